using PostTrain.Data.Readers;
using PostTrain.Eval.Runner;
using PostTrain.Eval.Tasks;

namespace PostTrain.Eval.Tests;

public sealed class RunnerTests(EvalFixture fx) : IClassFixture<EvalFixture>
{
    [Fact]
    public void KeepsEverySampleWithItsDetails()
    {
        // 2 models x 4 problems x (1 greedy + 3 sampled)
        Assert.Equal(32, fx.Result.Samples.Count);
        Assert.Equal(32, File.ReadAllLines(Path.Combine(fx.OutputDir, SampleLog.FileName)).Length);
        Assert.All(fx.Result.Samples, s =>
        {
            Assert.InRange(s.CompletionTokens, 1, 6);
            Assert.Contains(s.FinishReason, new[] { "stop", "length" });
            Assert.Equal(s.CompletionTokens == 6 ? "length" : "stop", s.FinishReason);
            Assert.StartsWith("What is", s.Prompt);
            Assert.EndsWith("Answer in \\boxed{}.", s.Prompt);
            Assert.NotNull(s.Reward);
            Assert.Equal(EvalSample.IsCorrect(s.Reward), s.Correct);
        });
        var m = fx.Result.Get("a", "tiny");
        Assert.Equal((4, 3), (m.Problems, m.SamplesPerProblem));
        Assert.Equal([1, 2, 3], m.PassAtK.Keys);
        Assert.Equal(["add", "mul", "sub"], m.Categories.Select(c => c.Category));
        var greedyA = fx.Result.Samples.Where(s => s.Model == "a" && s.Mode == EvalSample.Greedy).ToList();
        Assert.Equal(greedyA.Average(s => s.CompletionTokens), m.MeanCompletionTokens, 12);
        Assert.Equal(greedyA.Average(s => s.FinishReason == "length" ? 1.0 : 0.0), m.TruncationRate, 12);
        var c = Assert.Single(fx.Result.Comparisons);
        Assert.Equal(("a", "b", 4), (c.ModelA, c.ModelB, c.Problems));
    }

    [Fact]
    public void ResumesWithoutRecomputingFinishedSamplesAndDrawsTheSameSamples()
    {
        var dir = Path.Combine(fx.Root, $"resume-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        var full = File.ReadAllLines(Path.Combine(fx.OutputDir, SampleLog.FileName)).Where(l => l.Contains("\"model\":\"a\"")).ToList();
        Assert.Equal(16, full.Count);
        // An eval of model a that stopped after 8 samples (greedy unit, sampled problem 0, one sample of problem 1)
        // and died writing the 9th. The first stored sample is tampered with: if it were recomputed it would change.
        var kept = full.Take(8).ToList();
        kept[0] = kept[0].Replace("\"completion\":\"", "\"completion\":\"TAMPERED");
        File.WriteAllText(Path.Combine(dir, SampleLog.FileName), string.Join("\n", kept) + "\n" + full[8][..20]);
        EvalFixture.Settings.SaveOrCheck(dir);

        var progress = new StringWriter();
        var tasks = new[] { BuiltinTasks.Resolve(fx.TaskFile) };
        var r = new EvalRunner(EvalFixture.Settings, progress).Run([EvalModel.FromDirectory(fx.ModelA, "a")], tasks, dir);
        Assert.Equal(16, r.Samples.Count);
        Assert.StartsWith("TAMPERED", r.Samples.Single(s => s.Mode == EvalSample.Greedy && s.Problem == 0).Completion);
        // 3 sampled units ran (problems 1..3); the greedy unit and sampled problem 0 did not
        Assert.Equal(3, progress.ToString().Split('\n').Count(l => l.StartsWith("eval a tiny", StringComparison.Ordinal)));
        Assert.DoesNotContain(progress.ToString().Split('\n'), l => l.StartsWith("eval a tiny greedy", StringComparison.Ordinal));
        var expected = fx.Result.Samples.Where(s => s.Model == "a").ToDictionary(s => s.Key);
        foreach (var s in r.Samples.Where(s => !(s.Mode == EvalSample.Greedy && s.Problem == 0)))
        {
            var e = expected[s.Key];
            Assert.Equal((e.Completion, e.Reward, e.CompletionTokens, e.FinishReason), (s.Completion, s.Reward, s.CompletionTokens, s.FinishReason));
        }
        var lines = File.ReadAllLines(Path.Combine(dir, SampleLog.FileName));
        Assert.Equal(16, lines.Length);   // the torn line was cut, not kept

        // everything done: the model is not even loaded
        var again = new StringWriter();
        new EvalRunner(EvalFixture.Settings, again).Run([EvalModel.FromDirectory(fx.ModelA, "a")], tasks, dir);
        Assert.Contains("all samples already in", again.ToString());
        Assert.Equal(16, File.ReadAllLines(Path.Combine(dir, SampleLog.FileName)).Length);

        // other sampling settings cannot resume into this folder
        var e2 = Assert.Throws<EvalConfigException>(() => new EvalRunner(EvalFixture.Settings with { Temperature = 0.5 })
            .Run([EvalModel.FromDirectory(fx.ModelA, "a")], tasks, dir));
        Assert.Contains("temperature", e2.Message);
    }

    [Fact]
    public void WritesReportsWithTheExpectedTables()
    {
        var paths = fx.Result.Reports!;
        foreach (var p in new[] { paths.Html, paths.Markdown, paths.Parquet, paths.Csv, paths.SamplesJsonl }) Assert.True(File.Exists(p), p);
        Assert.Empty(Directory.GetFiles(fx.OutputDir, "*.tmp-*"));
        var md = File.ReadAllText(paths.Markdown);
        Assert.Contains("## Summary", md);
        Assert.Contains("| model | task | problems | accuracy | 95% CI | mean reward | pass@1 | pass@2 | pass@3 | maj@3 | mean tokens | truncated | checker failures |", md);
        var a = fx.Result.Get("a", "tiny");
        Assert.Contains($"| a | tiny | 4 | {a.Accuracy:F3} | {a.AccuracyCi} |", md);
        Assert.Contains("## Comparison with the baseline (first model)", md);
        Assert.Contains("## tiny: accuracy per category", md);
        var html = File.ReadAllText(paths.Html);
        Assert.Contains("<h2>Summary</h2>", html);
        Assert.Contains("<h2>Training curves</h2>", html);
        Assert.DoesNotContain("<script", html);
        Assert.DoesNotContain("http://", html.Replace("http://www.w3.org/", ""));   // SVG namespaces only
        Assert.Contains("Failures: a on tiny", html);
        // accuracy, pass@k and length plots for the task + 4 training curves (loss, reward, kl, completion_len)
        Assert.Equal(7, System.Text.RegularExpressions.Regex.Matches(html, "<svg").Count);

        var rows = DatasetReader.Read(paths.Parquet).ToList();
        Assert.Equal(32, rows.Count);
        var first = fx.Result.Samples[0];
        Assert.Equal((first.Model, first.Completion, (long)first.CompletionTokens), ((string)rows[0]["model"]!, (string)rows[0]["completion"]!, Convert.ToInt64(rows[0]["completion_tokens"])));
        Assert.StartsWith("model,task,mode,problem,sample,category,prompt,completion,answer,reward,correct,reason,prompt_tokens,completion_tokens,finish_reason", File.ReadAllText(paths.Csv));
    }
}
