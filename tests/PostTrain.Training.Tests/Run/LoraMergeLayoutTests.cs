// `posttrain merge` of one adapter (attention, dense and shared-expert MLPs, routed experts) saved in peft's
// transformers-5 fused-expert layout writes the same checkpoint, tensor for tensor, as the merge of the same adapter
// saved per expert; and `lora.peft_layout` binds from a recipe (default fused_experts, a wrong value names the key).
using PostTrain.Cli;
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Model;
using PostTrain.Training.Recipes;
using PostTrain.Training.Tests.Infra;
using PostTrain.Training.Tests.Recipes;
using static TorchSharp.torch;

namespace PostTrain.Training.Tests.Run;

[Collection(TorchGlobalRngCollection.Name)]
public sealed class LoraMergeLayoutTests
{
    private static readonly LoraSettings Settings = new(4, 8, 0, ["q_a_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], RoutedExperts: true);

    [Fact]
    public async Task Merge_of_the_fused_layout_equals_merge_of_the_per_expert_layout()
    {
        using var tmp = new TempDir();
        string start = tmp["base"];
        using (var m = new DeepSeekForCausalLM(BuiltinModels.Micro()))
        {
            m.InitWeights(0.02, 1);
            PretrainedModel.Save(m, start);
        }
        var (model, _) = PretrainedModel.Load(start);
        using (model)
        using (var lora = LoraAdapters.Attach(model, Settings, seed: 2))
        {
            var gen = new Generator(6);
            using (no_grad())
            {
                foreach (var (_, a) in lora.Entries) a.B.normal_(0, 0.05, generator: gen);
                foreach (var (_, _, a) in lora.ExpertEntries) a.B.normal_(0, 0.05, generator: gen);
            }
            PeftAdapterFiles.Save(tmp["fused"], lora, start);
        }
        var (again, _) = PretrainedModel.Load(start);
        using (again)
        using (var perExpert = LoraAdapters.Attach(again, Settings with { Layout = PeftLayout.PerExpert }, seed: 3))
        {
            PeftAdapterFiles.LoadWeights(tmp["fused"], perExpert);
            PeftAdapterFiles.Save(tmp["per-expert"], perExpert, start);
        }
        Assert.Contains(SafeTensors.ReadHeader(Path.Combine(tmp["fused"], PeftAdapterFiles.WeightsFileName)).Keys, k => k.EndsWith("mlp.experts.base_layer.lora_B.weight"));
        Assert.Contains(SafeTensors.ReadHeader(Path.Combine(tmp["per-expert"], PeftAdapterFiles.WeightsFileName)).Keys, k => k.EndsWith("mlp.experts.3.up_proj.lora_B.weight"));

        var err = new StringWriter();
        foreach (var layout in new[] { "fused", "per-expert" })
            Assert.Equal(0, await CliApp.RunAsync(["merge", "--adapter", tmp[layout], "--output", tmp[$"merged-{layout}"]], TextWriter.Null, err));
        var fused = SafeTensors.Load(tmp["merged-fused"]);
        var reference = SafeTensors.Load(tmp["merged-per-expert"]);
        var original = SafeTensors.Load(start);
        Assert.Equal(reference.Keys.Order(), fused.Keys.Order());
        foreach (var (k, t) in reference) Assert.True(t.eq(fused[k]).all().item<bool>(), k);
        foreach (var moved in new[] { "model.layers.1.mlp.experts.2.up_proj.weight", "model.layers.1.mlp.experts.0.down_proj.weight",
                     "model.layers.1.mlp.shared_experts.gate_proj.weight", "model.layers.0.mlp.down_proj.weight", "model.layers.1.self_attn.o_proj.weight" })
            Assert.False(original[moved].eq(fused[moved]).all().item<bool>(), $"{moved} merged");
        foreach (var t in fused.Values.Concat(reference.Values).Concat(original.Values)) t.Dispose();
    }

    [Fact]
    public void Peft_layout_binds_from_the_recipe()
    {
        LoraConfig Lora(string extra) => RecipeDocument.FromText($"""
            recipe: sft
            output_dir: runs/x
            model: {"{"} path: micro {"}"}
            data: {"{"} path: x.parquet {"}"}
            lora: {"{"} rank: 4, target_modules: [o_proj, gate_proj, up_proj, down_proj], routed_experts: true{extra} {"}"}
            """, "lora.yaml", []).Bind<SftConfig>().Lora!;
        Assert.Equal(PeftLayout.FusedExperts, Lora("").ToSettings().Layout);
        Assert.Equal(PeftLayout.PerExpert, Lora(", peft_layout: per_expert").ToSettings().Layout);
        var bad = Assert.Throws<RecipeConfigException>(() => Lora(", peft_layout: fused"));
        Assert.Contains("peft_layout", bad.Message);
        Assert.Contains("fused_experts", bad.Message);
    }
}
