using PostTrain.Cli;
using PostTrain.Core.Checkpoints;
using static TorchSharp.torch;

namespace PostTrain.Training.Tests.Recipes;

/// <summary>The user-facing verbs on real inputs: `logits` on the transformers parity fixture, `reward run` on JSONL.</summary>
public sealed class CliVerbTests
{
    static string Repo(string rel) => RepoPaths.Of(rel);

    static async Task<(int Code, string Out, string Err)> Cli(params string[] args)
    {
        var o = new StringWriter(); var e = new StringWriter();
        int code = await CliApp.RunAsync(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public async Task LogitsVerbReproducesTransformersOnTheFixture()
    {
        string fixture = Repo("tests/PostTrain.Core.Tests/Fixtures/parity/noqlora_yarn");
        string output = Path.Combine(Path.GetTempPath(), $"logits-{Guid.NewGuid():N}.safetensors");
        var (code, _, err) = await Cli("logits", "--model", fixture, "--input", Path.Combine(fixture, "reference.safetensors"), "--output", output);
        Assert.True(code == 0, err);
        var ours = SafeTensors.Load(output)["logits"];
        var reference = SafeTensors.Load(Path.Combine(fixture, "reference.safetensors"))["logits"];
        Assert.True((ours - reference).abs().max().item<float>() <= 1e-4f);
        File.Delete(output);
    }

    [Fact]
    public async Task LogitsVerbRejectsBadInputWithExitCode2()
    {
        string fixture = Repo("tests/PostTrain.Core.Tests/Fixtures/parity/qlora_grouped");
        var (code, _, err) = await Cli("logits", "--model", "/no/such/dir", "--input", Path.Combine(fixture, "reference.safetensors"), "--output", "/tmp/x.safetensors");
        Assert.Equal(2, code);
        Assert.Contains("/no/such/dir", err);
        string wrong = Path.Combine(Path.GetTempPath(), $"ids-{Guid.NewGuid():N}.safetensors");
        SafeTensors.Save(wrong, new Dictionary<string, Tensor> { ["input_ids"] = zeros(2, 3, 4, dtype: ScalarType.Int64) });
        (code, _, err) = await Cli("logits", "--model", fixture, "--input", wrong, "--output", "/tmp/x.safetensors");
        Assert.Equal(2, code);
        Assert.Contains("must be int64 [B, T]", err);
        (code, _, err) = await Cli("logits", "--model", fixture, "--input", "/no/file.safetensors", "--output", "/tmp/x.safetensors");
        Assert.Equal(2, code);
        Assert.Contains("/no/file.safetensors", err);
    }

    [Fact]
    public async Task RewardRunScoresJsonlCases()
    {
        string input = Path.Combine(Path.GetTempPath(), $"cases-{Guid.NewGuid():N}.jsonl");
        File.WriteAllLines(input, [
            """{"prompt": "2+2?", "completion": "\\boxed{4}", "answer": "4"}""",
            """{"prompt": "2+3?", "completion": "\\boxed{6}", "answer": "5"}""",
        ]);
        string output = input + ".out";
        var (code, _, err) = await Cli("reward", "run", "math", "--input", input, "--output", output, "--rewards-dir", Repo("rewards"));
        Assert.True(code == 0, err);
        var lines = File.ReadAllLines(output);
        Assert.Equal(2, lines.Length);
        Assert.Contains("\"score\":1", lines[0]);
        Assert.Contains("\"score\":0", lines[1]);
    }

    [Fact]
    public async Task RewardRunScoresWithATrainedRewardModelGivenByOption()
    {
        using var tmp = new PostTrain.Training.Tests.Infra.TempDir();
        using (var rm = PostTrain.Core.Model.RewardModelFiles.Random(PostTrain.Core.Model.BuiltinModels.Micro(), 3))
            PostTrain.Core.Model.RewardModelFiles.Save(rm, tmp["rm"], 0);
        File.WriteAllLines(tmp["cases.jsonl"], ["""{"prompt": "2+2?", "completion": "4"}""", """{"prompt": "2+3?", "completion": "6"}"""]);
        var (code, _, err) = await Cli("reward", "run", "model", "--input", tmp["cases.jsonl"], "--output", tmp["out.jsonl"],
            "--rewards-dir", Repo("rewards"), "--option", $"path={tmp["rm"]}", "--option", "device=cpu", "--option", "transform=sigmoid");
        Assert.True(code == 0, err);
        var scores = File.ReadAllLines(tmp["out.jsonl"]).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("score").GetDouble()).ToList();
        Assert.Equal(2, scores.Count);
        Assert.All(scores, s => Assert.InRange(s, 0.0, 1.0));
        (code, _, err) = await Cli("reward", "run", "model", "--input", tmp["cases.jsonl"], "--rewards-dir", Repo("rewards"));
        Assert.Equal(2, code);
        Assert.Contains("'path'", err);
    }
}
