// Data-parallel evaluation through the CLI: `posttrain run eval.yaml` with two random-init Micro models on a 5-problem
// task checked by a regex (a lowercase letter in the completion: random models pass some problems and fail others),
// greedy + 3 samples at temperature 1 in batches of 2 problems (units dealt round-robin over the ranks, an odd count
// of them). On 2 ranks samples.jsonl, the results file (accuracy, pass@k, maj@k, CIs, comparison) and the Markdown
// report are the same bytes as one process's; rank 0 alone prints the results.
using System.Text.Json.Nodes;
using PostTrain.Core.Model;
using PostTrain.Training.Tests.Infra;

namespace PostTrain.Training.Tests.Distributed;

[Collection(MpiCollection.Name)]
public sealed class DataParallelEvalTests : IDisposable
{
    private readonly TempDir _tmp = new();

    public DataParallelEvalTests()
    {
        foreach (var (name, seed) in new[] { ("a", 1L), ("b", 2L) })
        {
            using var m = new DeepSeekForCausalLM(BuiltinModels.Micro());
            m.InitWeights(0.2, seed);
            PretrainedModel.Save(m, _tmp[name]);
        }
        string[] words = ["apple", "Sun", "river", "Stone", "cloud"];
        File.WriteAllLines(_tmp["tiny.jsonl"], words.Select(w => $"{{\"prompt\": \"Say {w}.\"}}"));
        File.WriteAllText(_tmp["tiny.yaml"], "name: tiny\ndataset: tiny.jsonl\nchecker: regex\nchecker_options: { pattern: \"[a-z]\" }\nanswers: none\n");
        File.WriteAllText(_tmp["eval.yaml"], $$"""
            recipe: eval
            seed: 7
            models: [a={{_tmp["a"]}}, b={{_tmp["b"]}}]
            tasks: [{{_tmp["tiny.yaml"]}}]
            samples: 3
            temperature: 1.0
            max_new_tokens: 6
            batch_size: 2
            device: cpu
            """);
    }

    public void Dispose() => _tmp.Dispose();

    private (int, string) Cli(int ranks, string outputDir)
    {
        string[] args = ["run", _tmp["eval.yaml"], $"output_dir={outputDir}"];
        return MpiRun.RunCli(ranks, args);
    }

    [Fact]
    public void TwoRanksWriteTheSameSamplesAndReportAsOneProcess()
    {
        string one = _tmp["one"], two = _tmp["two"];
        var (rc, output) = Cli(1, one);
        Assert.True(rc == 0, output);
        (rc, output) = Cli(2, two);
        Assert.True(rc == 0, output);
        Assert.Equal(1, output.Split('\n').Count(l => l.StartsWith("a tiny: accuracy")));   // rank 0 alone prints

        var correct = File.ReadLines(Path.Combine(one, "samples.jsonl")).Select(l => JsonNode.Parse(l)!["correct"]!.GetValue<bool>()).ToList();
        Assert.Equal(2 * 5 * (1 + 3), correct.Count);                            // 2 models x 5 problems x (greedy + 3 samples)
        Assert.Contains(true, correct);                                           // the toy task is neither all right
        Assert.Contains(false, correct);                                          // nor all wrong
        foreach (var f in new[] { "samples.jsonl", "results.json", "report.md" })
            Assert.Equal(File.ReadAllText(Path.Combine(one, f)), File.ReadAllText(Path.Combine(two, f)));
    }
}
