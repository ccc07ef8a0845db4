using PostTrain.Core.Checkpoints;
using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Parity;

/// <summary>Logits of tiny random DeepseekV3ForCausalLM checkpoints against Hugging Face transformers 5.17
/// (reference outputs made on the GPU machine by scripts/gpu/make_parity_fixtures.py), on CPU in fp32.</summary>
public sealed class HfParityTests
{
    static string Dir(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "parity", name);

    [Theory]
    [InlineData("qlora_grouped")]   // q LoRA + group-limited routing + norm_topk_prob, interleaved rope
    [InlineData("noqlora_yarn")]    // no q LoRA + YaRN + no normalisation + two dense layers + tied embeddings
    [InlineData("plain_rope")]      // non-interleaved rope, 2 groups, no dense layer
    [InlineData("v2_softmax")]      // deepseek_v2: softmax scores, no bias, group-limited greedy
    public void LogitsMatchTransformers(string name)
    {
        using var _ = no_grad();
        var (model, report) = PretrainedModel.Load(Dir(name));
        model.eval();
        var r = SafeTensors.Load(Path.Combine(Dir(name), "reference.safetensors"));

        var o = model.Forward(r["input_ids"], returnHiddenStates: true);
        float diff = (o.Logits - r["logits"]).abs().max().item<float>();
        Assert.True(diff <= 1e-4f, $"{name}: max |logit diff| {diff}");
        for (int i = 0; i < o.HiddenStates!.Count; i++)
            Assert.True((o.HiddenStates[i] - r[$"hidden_{i}"]).abs().max().item<float>() <= 1e-4f, $"{name}: hidden_{i}");

        // left-padded batch with explicit position ids: compare real positions only
        var keep = r["pad_attention_mask"];
        var op = model.Forward(r["pad_input_ids"], r["pad_position_ids"], new AttentionMask(KeyPadding: keep));
        float padDiff = ((op.Logits - r["pad_logits"]).abs() * keep.unsqueeze(-1)).max().item<float>();
        Assert.True(padDiff <= 1e-4f, $"{name}: padded max diff {padDiff}");
    }

    [Fact]
    public void SavedCheckpointLoadsBackBitIdentically()
    {
        var (model, _) = PretrainedModel.Load(Dir("qlora_grouped"));
        string dir = Path.Combine(Path.GetTempPath(), "posttrain-save-" + Guid.NewGuid().ToString("N"));
        PretrainedModel.Save(model, dir);
        var (back, _) = PretrainedModel.Load(dir);
        var a = HfStateDict.Export(model);
        var b = HfStateDict.Export(back);
        Assert.Equal(a.Keys.OrderBy(k => k), b.Keys.OrderBy(k => k));
        foreach (var (k, t) in a)
            Assert.True(t.bytes.SequenceEqual(b[k].bytes), k);
        // the written names are exactly those of the transformers checkpoint, plus the MTP module
        var original = SafeTensors.ReadHeader(Path.Combine(Dir("qlora_grouped"), "model.safetensors")).Keys;
        var written = SafeTensors.ReadHeader(Path.Combine(dir, "model.safetensors")).Keys;
        Assert.Empty(original.Except(written));
        Assert.All(written.Except(original), k => Assert.StartsWith("model.layers.3.", k));
        Directory.Delete(dir, true);
    }

    [Fact]
    public void MismatchedCheckpointNamesEveryProblem()
    {
        var cfg = ModelConfig.Load(Dir("qlora_grouped")) with { KvLoraRank = 16 };
        var model = new DeepSeekForCausalLM(cfg);
        var tensors = SafeTensors.Load(Dir("qlora_grouped"));
        tensors.Remove("model.norm.weight");
        tensors["model.layers.0.self_attn.bogus.weight"] = zeros(2);
        var e = Assert.Throws<CheckpointMismatchException>(() => HfStateDict.Load(model, tensors, "ckpt-dir"));
        Assert.Contains("ckpt-dir", e.Message);
        Assert.Equal(["model.norm.weight"], e.Missing);
        Assert.Equal(["model.layers.0.self_attn.bogus.weight"], e.Unexpected);
        Assert.Contains("model.layers.0.self_attn.kv_a_layernorm.weight", e.MisShaped);
        Assert.Contains("model.norm.weight", e.Message);
        Assert.Contains("model.layers.0.self_attn.bogus.weight", e.Message);
    }
}
