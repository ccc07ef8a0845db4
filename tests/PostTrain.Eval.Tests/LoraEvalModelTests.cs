// A LoRA adapter directory evaluates as its base with the adapter folded in: EvalModel loads it to the same logits as
// the base with W + (alpha / r) B A written in by hand.
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Model;
using PostTrain.Eval.Runner;
using static TorchSharp.torch;

namespace PostTrain.Eval.Tests;

public sealed class LoraEvalModelTests
{
    [Fact]
    public void An_adapter_directory_evaluates_as_base_plus_adapter()
    {
        string root = Path.Combine(Path.GetTempPath(), "posttrain-lora-eval-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var model = new DeepSeekForCausalLM(BuiltinModels.Micro());
            model.InitWeights(0.2, 3);
            PretrainedModel.Save(model, Path.Combine(root, "base"));
            var lora = LoraAdapters.Attach(model, new LoraSettings(4, 8, 0, LoraSettings.AttentionModules), seed: 1);
            using (no_grad())
                foreach (var (_, a) in lora.Entries) a.B.normal_(0, 0.05, generator: new TorchSharp.torch.Generator(2));
            PeftAdapterFiles.Save(Path.Combine(root, "adapter"), lora, Path.Combine(root, "base"));

            var (expected, _) = PretrainedModel.Load(Path.Combine(root, "base"));
            var layers = expected.named_modules().Where(x => x.module is Linear).ToDictionary(x => x.name, x => (Linear)x.module);
            using (no_grad())
                foreach (var (path, a) in lora.Entries) layers[path].Weight.add_(matmul(a.B, a.A) * 2.0);   // alpha 8 / rank 4

            var (loaded, tokenizer, owned) = EvalModel.FromDirectory(Path.Combine(root, "adapter"), "lora").Load(CPU);
            Assert.True(owned);
            Assert.Equal(263, tokenizer.VocabSize);
            var ids = tensor(new long[] { 7, 99, 3, 180 }).view(1, -1);
            using (no_grad())
                Assert.True((loaded.Forward(ids).Logits - expected.Forward(ids).Logits).abs().max().item<float>() < 1e-5);
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, true);
        }
    }
}
