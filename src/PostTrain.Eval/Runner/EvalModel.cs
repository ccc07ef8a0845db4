// A model to evaluate: a label (used in sample keys and reports) and how to get the network and its tokenizer.
// From a Hugging Face directory (PretrainedModel.Load), or a LoRA adapter directory (its base with the adapter folded
// in): the tokenizer is dir/tokenizer.json (HfBpeTokenizer) when
// present, else the byte tokenizer (ByteTokenizer, what the built-in tiny models use). An already loaded model can be
// passed too (e.g. at the end of a training pipeline); the runner does not dispose those.
using PostTrain.Core.Model;
using PostTrain.Data.Tokenizers;
using PostTrain.Data.Tokenizers.Hf;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Eval.Runner;

public sealed class EvalModel
{
    private readonly Func<Device, (DeepSeekForCausalLM Model, ITokenizer Tokenizer, bool Owned)> _load;

    private EvalModel(string label, string? directory, Func<Device, (DeepSeekForCausalLM, ITokenizer, bool)> load)
    {
        if (string.IsNullOrWhiteSpace(label)) throw new EvalConfigException("a model label must not be empty");
        Label = label;
        Directory = directory;
        _load = load;
    }

    public string Label { get; }
    public string? Directory { get; }

    /// <summary>A model directory; label defaults to the directory's name.</summary>
    public static EvalModel FromDirectory(string dir, string? label = null)
    {
        string full;
        try { full = Path.GetFullPath(PostTrain.Data.Hub.HfHubCache.ResolvePath(dir)); }   // a hub id -> its cached snapshot
        catch (DirectoryNotFoundException e) { throw new EvalConfigException(e.Message); }
        if (!System.IO.Directory.Exists(full)) throw new EvalConfigException($"model directory '{dir}' not found");
        if (PostTrain.Core.Checkpoints.PeftAdapterFiles.IsAdapterDir(full))       // a LoRA adapter: its base with the adapter folded in
            return new EvalModel(label ?? Path.GetFileName(full.TrimEnd(Path.DirectorySeparatorChar)), full, device =>
            {
                var (model, baseDir) = ModelSetup.LoadFoldedAdapter(full, TextWriter.Null);
                if (device.type != DeviceType.CPU) model.to(device);
                return (model, LoadTokenizer(File.Exists(Path.Combine(full, "tokenizer.json")) ? full : baseDir), true);
            });
        if (!File.Exists(Path.Combine(full, "config.json"))) throw new EvalConfigException($"model directory '{dir}' has no config.json (expected a Hugging Face model folder or a LoRA adapter)");
        return new EvalModel(label ?? Path.GetFileName(full.TrimEnd(Path.DirectorySeparatorChar)), full, device =>
        {
            var (model, _) = PretrainedModel.Load(full, device);
            return (model, LoadTokenizer(full), true);
        });
    }

    /// <summary>"label=dir" or "dir".</summary>
    public static EvalModel Parse(string spec)
    {
        int eq = spec.IndexOf('=');
        return eq > 0 && !System.IO.Directory.Exists(spec) ? FromDirectory(spec[(eq + 1)..], spec[..eq]) : FromDirectory(spec);
    }

    /// <summary>An in-memory model (not disposed by the runner).</summary>
    public static EvalModel FromModel(string label, DeepSeekForCausalLM model, ITokenizer tokenizer) =>
        new(label, null, _ => (model, tokenizer, false));

    /// <summary>dir/tokenizer.json when it exists (HfBpeTokenizer), else the byte tokenizer.</summary>
    public static ITokenizer LoadTokenizer(string dir)
    {
        var path = Path.Combine(dir, "tokenizer.json");
        return File.Exists(path) ? HfBpeTokenizer.Load(path) : ByteTokenizer.Instance;
    }

    internal (DeepSeekForCausalLM Model, ITokenizer Tokenizer, bool Owned) Load(Device device) => _load(device);
}
