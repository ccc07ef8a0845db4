// What every trainer, and every verb that runs a model (generate, eval, serve), does first: resolve the device, build
// or load the model, pick the tokenizer, set precision.
// A model path is a Hugging Face-style directory, a hub id org/name[@revision] found in the local Hugging Face cache,
// or a built-in name (random init from the seed, byte tokenizer).
// Tokenizer: <dir>/tokenizer.json (byte-level BPE) when present, else the byte tokenizer.
// Expert parallel (several ranks): the model holds this rank's routed experts only; a built-in model is initialised
// whole from the seed (so every process count starts from the same weights) and sliced.
using PostTrain.Core.Distributed;
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Model;
using PostTrain.Core.Runtime;
using PostTrain.Data.Tokenizers;
using PostTrain.Data.Tokenizers.Hf;
using TorchSharp;
using static TorchSharp.torch;
using PrecisionMode = PostTrain.Core.Precision.Precision;

namespace PostTrain.Runtime;

/// <summary>A loaded model; TokenizerDir is the directory its tokenizer came from (null = the byte tokenizer).</summary>
public sealed record LoadedModel(DeepSeekForCausalLM Model, ITokenizer Tokenizer, Device Device, string Source, string? TokenizerDir);

public static class ModelSetup
{
    public static PrecisionMode PrecisionOf(DTypeName d) => d switch
    {
        DTypeName.Float32 => PrecisionMode.Fp32,
        DTypeName.Bfloat16 => PrecisionMode.Bf16,
        DTypeName.Fp8 => PrecisionMode.Fp8,
        DTypeName.Auto => throw new InvalidOperationException("model.dtype: auto is resolved on the device first (DTypeNames.Resolve)"),
        _ => throw new RecipeConfigException($"model.dtype: '{d}' is not a dtype ({DTypeNames.List})"),
    };

    /// <summary>The precision <paramref name="d"/> means on <paramref name="device"/> (auto resolved there), and a line
    /// saying what auto chose (null when the dtype was given).</summary>
    public static (PrecisionMode Precision, string? Note) PrecisionOn(DTypeName d, Device device)
    {
        var resolved = DTypeNames.Resolve(d, device.type);
        return (PrecisionOf(resolved), d == DTypeName.Auto ? $"model.dtype: auto -> {DTypeNames.Name(resolved)} (on {device.type.ToString().ToLowerInvariant()})" : null);
    }

    /// <summary>PrecisionOn's precision, with what auto chose written to <paramref name="log"/>.</summary>
    public static PrecisionMode PrecisionOn(DTypeName d, Device device, TextWriter log)
    {
        var (precision, note) = PrecisionOn(d, device);
        if (note is not null) log.WriteLine(note);
        return precision;
    }

    /// <summary>model.fp8_min_dim, checked: not negative, and set only where the model computes in fp8.</summary>
    public static int Fp8MinDimOf(ModelConfigSection m, Device device)
    {
        if (m.Fp8MinDim < 0) throw new RecipeConfigException($"model.fp8_min_dim: must be 0 (every layer) or a width, got {m.Fp8MinDim}");
        var dtype = DTypeNames.Resolve(m.Dtype, device.type);
        if (m.Fp8MinDim > 0 && dtype != DTypeName.Fp8)
            throw new RecipeConfigException($"model.fp8_min_dim: applies to model.dtype fp8 only; model.dtype is {DTypeNames.Name(dtype)}");
        return m.Fp8MinDim;
    }

    public static LoadedModel Load(ModelConfigSection m, long seed, TextWriter log, ExpertParallelism? expertParallel = null)
    {
        var device = DeviceSelector.Resolve(m.Device, "model.device");
        int fp8MinDim = Fp8MinDimOf(m, device);   // a bad value fails before the model is loaded
        DeepSeekForCausalLM model;
        string? tokDir = m.Tokenizer;
        if (BuiltinModels.ByName.TryGetValue(m.Path, out var make) && !Directory.Exists(m.Path))
        {
            model = new DeepSeekForCausalLM(make());
            model.InitWeights(0.02, seed);
            if (expertParallel is { Size: > 1 }) model = Slice(model, expertParallel);
            log.WriteLine($"model: built-in '{m.Path}' ({model.ParameterCount() / 1e6:F2} M parameters), random init (seed {seed})");
        }
        else
        {
            string dir;
            try { dir = PostTrain.Data.Hub.HfHubCache.ResolvePath(m.Path); }   // a hub id org/name[@rev] -> its cached snapshot
            catch (DirectoryNotFoundException e) { throw new RecipeConfigException($"model.path: {e.Message}"); }
            if (!Directory.Exists(dir))
                throw new RecipeConfigException($"model.path: '{m.Path}' is neither a directory nor a built-in model ({string.Join(", ", BuiltinModels.ByName.Keys)})");
            if (PeftAdapterFiles.IsAdapterDir(dir))
            {
                if (expertParallel is { Size: > 1 })
                    throw new RecipeConfigException($"model.path: '{m.Path}' is a LoRA adapter; distributed.expert_parallel > 1 needs a full model directory");
                (model, var baseDir) = LoadFoldedAdapter(dir, log);
                tokDir ??= HasTokenizer(dir) ? dir : baseDir;
            }
            else
            {
                (model, var report) = PretrainedModel.Load(dir, device, expertParallel);   // streamed onto the device, one tensor at a time
                log.WriteLine($"model: {m.Path} ({model.ParameterCount() / 1e6:F2} M parameters; loaded in {report.Seconds:F1} s, " +
                    $"peak host memory {report.PeakHostBytes / 1e9:F2} GB)" +
                    (report.LeftInitialised.Count > 0 ? $"; {report.LeftInitialised.Count} MTP tensors not in the checkpoint start random" : ""));
                tokDir ??= dir;
            }
        }
        var tokenizer = LoadTokenizer(tokDir);
        if (tokenizer.VocabSize > model.Config.VocabSize)
            throw new RecipeConfigException($"model.tokenizer: vocabulary {tokenizer.VocabSize} exceeds the model's vocab_size {model.Config.VocabSize}");
        model.SetPrecision(PrecisionOn(m.Dtype, device, log), fp8MinDim);
        if (fp8MinDim > 0)
        {
            var (fp8, other) = model.Fp8Layers();
            log.WriteLine($"model.fp8_min_dim: {fp8MinDim}: {fp8} of {fp8 + other} linear layers and expert sets in FP8, {other} narrower in bfloat16");
        }
        if (device.type != TorchSharp.DeviceType.CPU) model.to(device);
        if (m.ParamDtype == DTypeName.Bfloat16)
        {
            model.to(TorchSharp.torch.ScalarType.BFloat16);
            // the fp32 tensors the conversion replaced are freed by their finalisers: run them now, so a 16B model's 64 GB
            // of fp32 parameters are not still held on the GPU when the optimizer allocates its state
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
        }
        else if (m.ParamDtype != DTypeName.Float32) throw new RecipeConfigException($"model.param_dtype: must be float32 or bfloat16, got {DTypeNames.Name(m.ParamDtype)}");
        return new LoadedModel(model, tokenizer, device, m.Path, HasTokenizer(tokDir) ? tokDir : null);
    }

    /// <summary>The expert-parallel model holding this rank's experts of <paramref name="full"/> (disposed).</summary>
    private static DeepSeekForCausalLM Slice(DeepSeekForCausalLM full, ExpertParallelism ep)
    {
        var sliced = new DeepSeekForCausalLM(full.Config, expertParallel: ep);
        using (NewDisposeScope()) HfStateDict.Load(sliced, HfStateDict.Export(full), "built-in model");
        full.Dispose();
        return sliced;
    }

    /// <summary>A PEFT LoRA adapter directory: its base model (base_model_name_or_path, a directory, absolute or relative to
    /// the working directory or the adapter) with the adapter folded into the weights.</summary>
    public static (DeepSeekForCausalLM Model, string BaseDir) LoadFoldedAdapter(string adapterDir, TextWriter log)
    {
        var (settings, baseModel) = PeftAdapterFiles.ReadConfig(adapterDir);
        string baseDir = Directory.Exists(baseModel) ? baseModel : Path.Combine(adapterDir, baseModel);
        if (!Directory.Exists(baseDir))
            throw new RecipeConfigException($"model.path: '{adapterDir}' is a LoRA adapter whose base model '{baseModel}' " +
                $"({PeftAdapterFiles.ConfigFileName}: base_model_name_or_path) is not a directory");
        var (model, _) = PretrainedModel.Load(baseDir);
        using (var lora = LoraAdapters.Attach(model, settings, seed: 0))
        {
            PeftAdapterFiles.LoadWeights(adapterDir, lora);
            lora.Fold();
            log.WriteLine($"model: {baseDir} + LoRA adapter {adapterDir} (r {settings.Rank}, alpha {settings.Alpha}, " +
                $"{lora.Entries.Count()} layers), folded ({model.ParameterCount() / 1e6:F2} M parameters)");
        }
        foreach (var p in model.parameters()) p.requires_grad = true;
        return (model, baseDir);
    }

    public static ITokenizer LoadTokenizer(string? dir) => HasTokenizer(dir) ? HfBpeTokenizer.Load(dir!) : ByteTokenizer.Instance;

    private static bool HasTokenizer(string? dir) => dir is not null && File.Exists(Path.Combine(dir, "tokenizer.json"));

    /// <summary>The tokenizer files a model directory ships (Hugging Face names). A trainer copies those of its
    /// tokenizer directory into every model it saves, so the next stage loads the same tokenizer and chat template.</summary>
    public static readonly IReadOnlyList<string> TokenizerFileNames =
        ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"];

    /// <summary>The tokenizer files of <paramref name="dir"/> (name -> text), or null when it has none.</summary>
    public static Dictionary<string, string>? TokenizerFiles(string? dir)
    {
        if (dir is null) return null;
        var files = TokenizerFileNames.Where(f => File.Exists(Path.Combine(dir, f)))
            .ToDictionary(f => f, f => File.ReadAllText(Path.Combine(dir, f)));
        return files.Count > 0 ? files : null;
    }
}
