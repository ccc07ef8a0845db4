// Maps the model's parameters to and from Hugging Face checkpoint names.
// In memory, routed experts are stacked (mlp.experts.{gate,up,down}_proj of shape (E, out, in)) for grouped GEMMs;
// on disk they are per expert (mlp.experts.{e}.{gate,up,down}_proj.weight) as transformers writes them. Fused
// in-memory transformers names (mlp.experts.gate_up_proj (E, 2I, H), mlp.experts.down_proj (E, H, I)) are read too.
// MTP module k is model.layers.{num_hidden_layers + k}; its copies of the shared embedding and head
// (embed_tokens.weight, shared_head.head.weight) are written for DeepSeek-V3 compatibility and ignored on load.
// Loading reads the checkpoint through a shape table and a read(name) function, one tensor at a time inside its own
// dispose scope: from a dictionary (tensors already in memory) or streamed from the files (CheckpointTensors), where
// host memory then holds one checkpoint tensor at a time beside the model.
// Expert parallel models (DeepSeekForCausalLM.ExpertParallel) hold experts [first, first + E/P) of each layer: Load
// copies those experts' tensors of a full checkpoint and passes over the other ranks' experts; Export takes the state
// consolidated over the expert-parallel group (ExpertParallelCheckpoint), so the names are the single-process ones.
using System.Text.RegularExpressions;
using PostTrain.Core.Checkpoints;
using static TorchSharp.torch;

namespace PostTrain.Core.Model;

/// <summary>What a load did: tensors it could not find (left as initialised) and copies it ignored.</summary>
public sealed record LoadReport(IReadOnlyList<string> LeftInitialised, IReadOnlyList<string> Ignored)
{
    /// <summary>Wall time of the load (build + read + copy), when measured.</summary>
    public double Seconds { get; init; }

    /// <summary>The process's peak working set (host memory) at the end of the load, when measured.</summary>
    public long PeakHostBytes { get; init; }
}

public static partial class HfStateDict
{
    [GeneratedRegex(@"^(.*\.mlp\.experts)\.(gate_proj|up_proj|down_proj)$")]
    private static partial Regex StackedExpert();

    [GeneratedRegex(@"\.mlp\.experts\.(\d+)\.(gate_proj|up_proj|down_proj)\.weight$")]
    private static partial Regex OneExpert();

    /// <summary>Which checkpoint tensors a load into this model reads (SafeTensorsLoadOptions.Filter): every one, except,
    /// for an expert-parallel model, the per-expert tensors of experts other ranks hold. Null = read everything.</summary>
    public static Func<string, bool>? ReadFilter(DeepSeekForCausalLM m)
    {
        if (m.ExpertParallel is not { } ep) return null;
        int local = m.Config.NRoutedExperts / ep.Size, first = ep.FirstExpert(local);
        return key =>
        {
            var e = OneExpert().Match(key);
            if (!e.Success) return true;
            int expert = int.Parse(e.Groups[1].Value);
            return expert >= first && expert < first + local;
        };
    }

    /// <summary>Model parameter name -> Hugging Face name(s). Expert stacks expand to one name per expert.</summary>
    public static string ToHfPrefix(string name, ModelConfig c)
    {
        if (name.StartsWith("mtp.", StringComparison.Ordinal))
        {
            int dot = name.IndexOf('.', 4);
            int k = int.Parse(name.AsSpan(4, dot - 4));
            return $"model.layers.{c.NumHiddenLayers + k}.{name[(dot + 1)..]}";
        }
        return name;
    }

    /// <summary>The checkpoint tensors for this model, Hugging Face names, sharing storage where possible (CPU, fp32).</summary>
    /// <param name="state">The model's state_dict with every expert (expert parallel: consolidated over the group).</param>
    public static Dictionary<string, Tensor> Export(DeepSeekForCausalLM m, IEnumerable<(string Name, Tensor Value)>? state = null)
    {
        if (state is null && m.ExpertParallel is not null)
            throw new InvalidOperationException("an expert-parallel model holds a slice of the experts: export the state consolidated by ExpertParallelCheckpoint");
        return Export(m.Config, (state ?? m.state_dict().Select(kv => (kv.Key, kv.Value))).ToDictionary(x => x.Name, x => x.Value, StringComparer.Ordinal));
    }

    /// <summary>As above, from a model state dict by model names (e.g. averaged weights beside the model's buffers).</summary>
    public static Dictionary<string, Tensor> Export(ModelConfig c, IReadOnlyDictionary<string, Tensor> state)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, t) in state)
            foreach (var (hf, x) in ExportTensor(name, t, c)) result[hf] = x;
        for (int k = 0; k < c.NumNextnPredictLayers; k++)
        {
            string p = $"model.layers.{c.NumHiddenLayers + k}.";
            result[p + "embed_tokens.weight"] = state["model.embed_tokens.weight"].detach();
            result[p + "shared_head.head.weight"] = state[c.TieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight"].detach();
        }
        return result;
    }

    /// <summary>One model tensor under its Hugging Face name(s): an expert stack (E, out, in) becomes E tensors.</summary>
    public static IEnumerable<(string Name, Tensor Tensor)> ExportTensor(string name, Tensor t, ModelConfig c)
    {
        string hf = ToHfPrefix(name, c);
        var match = StackedExpert().Match(hf);
        if (!match.Success)
        {
            yield return (hf, t.detach());
            yield break;
        }
        for (int e = 0; e < t.shape[0]; e++)
            yield return ($"{match.Groups[1].Value}.{e}.{match.Groups[2].Value}.weight", t[e].detach());
    }

    /// <summary>Copies checkpoint tensors into the model. Every missing, unexpected or mis-shaped tensor is reported
    /// in one error. MTP modules absent from the checkpoint stay as initialised (listed in the report): checkpoints
    /// written by transformers carry no MTP weights.</summary>
    public static LoadReport Load(DeepSeekForCausalLM m, IReadOnlyDictionary<string, Tensor> checkpoint, string source) =>
        Load(m, checkpoint.ToDictionary(kv => kv.Key, kv => kv.Value.shape, StringComparer.Ordinal), name => checkpoint[name], source);

    /// <summary>As above, reading each tensor through <paramref name="read"/> (a new tensor it makes is freed after its copy).</summary>
    public static LoadReport Load(DeepSeekForCausalLM m, IReadOnlyDictionary<string, long[]> checkpoint, Func<string, Tensor> read, string source)
    {
        var c = m.Config;
        var missing = new List<(string, long[])>();
        var misShaped = new List<(string, long[], long[], string)>();
        var used = new HashSet<string>(StringComparer.Ordinal);
        var leftInit = new List<string>();
        bool hasMtp = checkpoint.Keys.Any(k => k.StartsWith($"model.layers.{c.NumHiddenLayers}.", StringComparison.Ordinal));
        var otherRanks = new HashSet<string>(StringComparer.Ordinal);   // expert parallel: experts another rank loads

        using var _ = no_grad();
        foreach (var (name, target) in m.state_dict())
        {
            string hf = ToHfPrefix(name, c);
            bool isMtp = name.StartsWith("mtp.", StringComparison.Ordinal);
            var match = StackedExpert().Match(hf);
            if (match.Success)
            {
                string prefix = match.Groups[1].Value, proj = match.Groups[2].Value;
                int local = (int)target.shape[0], first = m.ExpertParallel?.FirstExpert(local) ?? 0;
                if (TryFused(checkpoint, read, prefix, proj, target, first, c.NRoutedExperts, used, misShaped)) continue;
                for (int e = 0; e < local; e++)
                    CopyOne(checkpoint, read, $"{prefix}.{first + e}.{proj}.weight", target[e], used, isMtp && !hasMtp ? leftInit : null, missing, misShaped, source);
                for (int e = 0; e < c.NRoutedExperts; e++)
                    if (e < first || e >= first + local) otherRanks.Add($"{prefix}.{e}.{proj}.weight");
            }
            else CopyOne(checkpoint, read, hf, target, used, isMtp && !hasMtp ? leftInit : null, missing, misShaped, source);
        }
        var ignored = new List<string>();
        var unexpected = new List<(string, long[], string)>();
        foreach (var key in checkpoint.Keys)
        {
            if (used.Contains(key) || otherRanks.Contains(key)) continue;
            if (Regex.IsMatch(key, @"^model\.layers\.\d+\.(embed_tokens\.weight|shared_head\.head\.weight)$") ||
                key.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal) ||
                (c.TieWordEmbeddings && key == "lm_head.weight"))
                ignored.Add(key);
            else if (IsExtraMtpLayer(key, c)) ignored.Add(key);
            else unexpected.Add((key, checkpoint[key], source));
        }
        if (missing.Count + misShaped.Count + unexpected.Count > 0)
            throw new CheckpointMismatchException(source, missing, unexpected, misShaped, null);
        return new LoadReport(leftInit, ignored);
    }

    // MTP layers beyond the model's num_nextn_predict_layers (e.g. loading a V3 checkpoint without its MTP module).
    private static bool IsExtraMtpLayer(string key, ModelConfig c)
    {
        var mm = Regex.Match(key, @"^model\.layers\.(\d+)\.");
        return mm.Success && int.Parse(mm.Groups[1].Value) >= c.NumHiddenLayers + c.NumNextnPredictLayers;
    }

    private static void CopyOne(IReadOnlyDictionary<string, long[]> ckpt, Func<string, Tensor> read, string key, Tensor target, HashSet<string> used,
        List<string>? leftInitialised, List<(string, long[])> missing, List<(string, long[], long[], string)> misShaped, string source)
    {
        if (!ckpt.TryGetValue(key, out var shape))
        {
            if (leftInitialised is not null) leftInitialised.Add(key); else missing.Add((key, target.shape));
            return;
        }
        used.Add(key);
        if (!shape.SequenceEqual(target.shape))
        {
            misShaped.Add((key, target.shape, shape, source));
            return;
        }
        if (misShaped.Count + missing.Count > 0) return;   // the load fails: no point reading more
        using var scope = NewDisposeScope();
        target.copy_(read(key).to(target.dtype, target.device));
    }

    // target holds experts [first, first + target.shape[0]) of the checkpoint's `experts` (all of them in one process)
    private static bool TryFused(IReadOnlyDictionary<string, long[]> ckpt, Func<string, Tensor> read, string prefix, string proj, Tensor target,
        int first, int experts, HashSet<string> used, List<(string, long[], long[], string)> misShaped)
    {
        using var scope = NewDisposeScope();
        long local = target.shape[0];
        if (proj == "down_proj" && ckpt.TryGetValue($"{prefix}.down_proj", out var down))
        {
            used.Add($"{prefix}.down_proj");
            long[] full = [experts, target.shape[1], target.shape[2]];
            if (!down.SequenceEqual(full)) misShaped.Add(($"{prefix}.down_proj", full, down, ""));
            else target.copy_(read($"{prefix}.down_proj").narrow(0, first, local).to(target.dtype, target.device));
            return true;
        }
        if (proj != "down_proj" && ckpt.TryGetValue($"{prefix}.gate_up_proj", out var gu))
        {
            used.Add($"{prefix}.gate_up_proj");
            long inter = target.shape[1];
            if (gu.Length != 3 || gu[0] != experts || gu[1] != 2 * inter || gu[2] != target.shape[2])
                misShaped.Add(($"{prefix}.gate_up_proj", [experts, 2 * inter, target.shape[2]], gu, ""));
            else target.copy_(read($"{prefix}.gate_up_proj").narrow(0, first, local).narrow(1, proj == "gate_proj" ? 0 : inter, inter).to(target.dtype, target.device));
            return true;
        }
        return false;
    }
}
