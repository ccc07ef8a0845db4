// RunModel for the core causal LM: saved as a Hugging Face DeepseekV3ForCausalLM directory (fp32 safetensors, bf16 for
// bf16 parameters, config.json, and the tokenizer files), weights streamed back from such a directory one tensor at a time.
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
            return new(model, (dir, extraFiles) => PretrainedModel.Save(model, dir, StoredDtype(model), extraFiles: extraFiles),
                dir => LoadWeights(model, dir), tokenizerDir,
                (dir, state, extraFiles) => PretrainedModel.SaveState(model.Config, state, dir, extraFiles: extraFiles));
        List<(string Name, Tensor Value)>? consolidated = null;
        return new RunModel(model,
            (dir, extraFiles) => PretrainedModel.Save(model, dir, StoredDtype(model), extraFiles: extraFiles,
                consolidated: consolidated ?? throw new InvalidOperationException("an expert-parallel model saves inside RunModel.Consolidate")),
            dir => LoadWeights(model, dir), tokenizerDir)
        {
            ExpertParallel = model.ExpertParallel,
            Consolidate = () =>
            {
                // the main rank writes the model: it keeps the gathered experts on the host; the others only join the gathers
                consolidated = ExpertParallelCheckpoint.Consolidate(model, writer: Dist.IsMain);
                return new PostTrain.Core.Runtime.OnDispose(() =>
                {
                    foreach (var (name, t) in consolidated) if (ExpertParallelCheckpoint.IsExpert(name)) t.Dispose();
                    consolidated = null;
                });
            },
        };
    }

    // streamed: one checkpoint tensor in host memory at a time (an expert-parallel rank reads only its experts)
    private static void LoadWeights(DeepSeekForCausalLM model, string dir)
    {
        using var tensors = CheckpointTensors.Open(dir);
        HfStateDict.Load(model, tensors.Shapes, tensors.Read, dir);
    }

    // bf16 parameters (model.param_dtype) are saved as they are: fp32 would double the files and add nothing
    private static ScalarType StoredDtype(DeepSeekForCausalLM model) =>
        model.parameters().Any(p => p.dtype == ScalarType.BFloat16) ? ScalarType.BFloat16 : ScalarType.Float32;

}
