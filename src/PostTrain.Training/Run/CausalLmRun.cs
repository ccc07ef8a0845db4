// RunModel for the core causal LM: saved as a Hugging Face DeepseekV3ForCausalLM directory (fp32 safetensors, bf16 for bf16 parameters,
// config.json, and the tokenizer files), weights streamed back from such a directory one tensor at a time.
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Training.Run;

public static class CausalLmRun
{
    public static RunModel Of(DeepSeekForCausalLM model, string? tokenizerDir) => new(
        model,
        (dir, extraFiles) => PretrainedModel.Save(model, dir, StoredDtype(model), extraFiles: extraFiles),
        dir =>
        {
            using var tensors = CheckpointTensors.Open(dir);   // streamed: one checkpoint tensor in host memory at a time
            HfStateDict.Load(model, tensors.Shapes, tensors.Read, dir);
        },
        tokenizerDir,
        (dir, state, extraFiles) => PretrainedModel.SaveState(model.Config, state, dir, extraFiles: extraFiles));

    // bf16 parameters (model.param_dtype) are saved as they are: fp32 would double the files and add nothing
    private static ScalarType StoredDtype(DeepSeekForCausalLM model) =>
        model.parameters().Any(p => p.dtype == ScalarType.BFloat16) ? ScalarType.BFloat16 : ScalarType.Float32;
}
