// RunModel for the core causal LM: saved as a Hugging Face DeepseekV3ForCausalLM directory (fp32 safetensors, bf16 for
// bf16 parameters, config.json, and the tokenizer files), weights streamed back from such a directory one tensor at a time.
// Expert parallel: every rank reads its experts of the full directory; rank 0 writes the single-process directory,
// gathering one expert stack at a time from its EP group (SaveStreamed).
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
        return new RunModel(model,
            (_, _) => throw new InvalidOperationException("an expert-parallel model is saved by its EP group's rank 0 through SaveStreamed"),
            dir => LoadWeights(model, dir), tokenizerDir)
        {
            ExpertParallel = model.ExpertParallel,
            ExpertStacks = () => ExpertParallelCheckpoint.LocalStacks(model),
            SaveStreamed = (dir, extraFiles, experts) =>
                PretrainedModel.SaveStreamed(model, dir, experts, StoredDtype(model), extraFiles: extraFiles),
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
