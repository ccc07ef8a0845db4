// RunModel for the core causal LM: saved as a Hugging Face DeepseekV3ForCausalLM directory (fp32 safetensors,
// config.json, and the tokenizer files), weights read back from such a directory with the loaded tensors disposed.
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Model;

namespace PostTrain.Training.Run;

public static class CausalLmRun
{
    public static RunModel Of(DeepSeekForCausalLM model, string? tokenizerDir) => new(
        model,
        (dir, extraFiles) => PretrainedModel.Save(model, dir, extraFiles: extraFiles),
        dir =>
        {
            var tensors = SafeTensors.Load(dir);
            try { HfStateDict.Load(model, tensors, dir); }
            finally { foreach (var t in tensors.Values) t.Dispose(); }
        },
        tokenizerDir,
        (dir, state, extraFiles) => PretrainedModel.SaveState(model.Config, state, dir, extraFiles: extraFiles));
}
