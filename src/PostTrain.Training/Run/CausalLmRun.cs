// RunModel for the core causal LM: saved as a Hugging Face DeepseekV3ForCausalLM directory (fp32 safetensors,
// config.json, and the tokenizer files), weights read back from such a directory with the loaded tensors disposed.
// Expert parallel: every rank reads its experts of the full directory; Consolidate gathers the experts (collective)
// so that rank 0 writes the single-process directory.
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Distributed;
using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Training.Run;

public static class CausalLmRun
{
    public static RunModel Of(DeepSeekForCausalLM model, string? tokenizerDir)
    {
        if (model.ExpertParallel is null)
            return new(model, (dir, extraFiles) => PretrainedModel.Save(model, dir, extraFiles: extraFiles), dir => LoadWeights(model, dir), tokenizerDir);
        List<(string Name, Tensor Value)>? consolidated = null;
        return new RunModel(model,
            (dir, extraFiles) => PretrainedModel.Save(model, dir, extraFiles: extraFiles,
                consolidated: consolidated ?? throw new InvalidOperationException("an expert-parallel model saves inside RunModel.Consolidate")),
            dir => LoadWeights(model, dir), tokenizerDir)
        {
            ExpertParallel = model.ExpertParallel,
            Consolidate = () =>
            {
                consolidated = ExpertParallelCheckpoint.Consolidate(model);
                return new Release(() =>
                {
                    foreach (var (name, t) in consolidated) if (ExpertParallelCheckpoint.IsExpert(name)) t.Dispose();
                    consolidated = null;
                });
            },
        };
    }

    private static void LoadWeights(DeepSeekForCausalLM model, string dir)
    {
        var tensors = SafeTensors.Load(dir, new SafeTensorsLoadOptions { Filter = HfStateDict.ReadFilter(model) });
        try { HfStateDict.Load(model, tensors, dir); }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }

    private sealed class Release(Action release) : IDisposable
    {
        public void Dispose() => release();
    }
}
