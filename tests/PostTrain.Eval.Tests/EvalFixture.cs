// Shared setup for the runner, report and browser tests: two tiny random-init Micro models saved as Hugging Face
// folders (byte tokenizer, no tokenizer.json), a 4-problem arithmetic task file, a fake training metrics.jsonl, and
// one eval of both models (greedy + 3 samples at temperature 1, 6 new tokens) whose output the tests inspect.
using PostTrain.Core.Model;
using PostTrain.Eval.Runner;
using PostTrain.Eval.Tasks;

namespace PostTrain.Eval.Tests;

public sealed class EvalFixture : IDisposable
{
    public string Root { get; } = Path.Combine(Path.GetTempPath(), $"posttrain-eval-{Guid.NewGuid():N}");
    public string ModelA => Path.Combine(Root, "model-a");
    public string ModelB => Path.Combine(Root, "model-b");
    public string TaskFile => Path.Combine(Root, "tiny.yaml");
    public string MetricsFile => Path.Combine(Root, "run", "metrics.jsonl");
    public string OutputDir => Path.Combine(Root, "out");
    public EvalResult Result { get; }
    public string Progress { get; }

    public static EvalSettings Settings => new() { Samples = 3, Temperature = 1.0, MaxNewTokens = 6, BatchSize = 4, Device = "cpu", BootstrapResamples = 300 };

    public EvalFixture()
    {
        Directory.CreateDirectory(Root);
        SaveMicro(ModelA, seed: 1);
        SaveMicro(ModelB, seed: 2);
        File.WriteAllText(Path.Combine(Root, "tiny.jsonl"), string.Join("\n",
            """{"prompt": "What is 2 + 3?", "answer": 5, "category": "add"}""",
            """{"prompt": "What is 7 - 4?", "answer": 3, "category": "sub"}""",
            """{"prompt": "What is 6 * 2?", "answer": 12, "category": "mul"}""",
            """{"prompt": "What is 9 + 9?", "answer": 18, "category": "add"}""") + "\n");
        File.WriteAllText(TaskFile, "name: tiny\ndataset: tiny.jsonl\nchecker: math\nprompt_template: \"{prompt} Answer in \\\\boxed{{}}.\"\n");
        Directory.CreateDirectory(Path.GetDirectoryName(MetricsFile)!);
        File.WriteAllText(MetricsFile, string.Concat(Enumerable.Range(1, 20).Select(s =>
            $"{{\"step\":{s},\"time\":0,\"elapsed_s\":{s},\"loss\":{3.0 / s:R},\"reward\":{s / 20.0:R},\"kl\":{0.01 * s:R},\"completion_len\":{40 + s},\"lr\":0.001}}\n")));
        var progress = new StringWriter();
        Result = new EvalRunner(Settings, progress).Run([EvalModel.FromDirectory(ModelA, "a"), EvalModel.FromDirectory(ModelB, "b")],
            [BuiltinTasks.Resolve(TaskFile)], OutputDir, MetricsFile);
        Progress = progress.ToString();
    }

    public static void SaveMicro(string dir, long seed)
    {
        using var m = new DeepSeekForCausalLM(BuiltinModels.Micro());
        m.InitWeights(0.2, seed);
        PretrainedModel.Save(m, dir);
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}
