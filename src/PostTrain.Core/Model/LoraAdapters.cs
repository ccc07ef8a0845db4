// LoRA adapters on a model's linear layers, PEFT style: every Linear of the main decoder whose module name (the last
// path segment, e.g. q_a_proj, kv_b_proj, o_proj, gate_proj) is in target_modules gets a LoraAdapter; the base
// model's parameters are frozen, so an optimizer over this container trains only the adapters. PEFT's key names:
// base_model.model.<module path>.lora_A.weight / .lora_B.weight, e.g.
// base_model.model.model.layers.0.self_attn.q_a_proj.lora_A.weight. Fold() adds (alpha / r) B A into each base weight
// (what `posttrain merge` writes). Disabled() switches the adapters off for a scope (the base model computes alone: GRPO's
// reference model without a second copy); Merged() folds them into the base weights for a scope and restores the
// saved weights exactly afterwards (for paths that read the weights directly, such as the generation engine).
// Simplifications: routed experts (stacked weights) and MTP modules get no adapters.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PostTrain.Core.Model;

public sealed record LoraSettings(int Rank, double Alpha, double Dropout, IReadOnlyList<string> TargetModules)
{
    /// <summary>MLA's projections (with and without a q LoRA rank): PEFT's usual attention-only targets for DeepSeek-V3.</summary>
    public static readonly IReadOnlyList<string> AttentionModules = ["q_proj", "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"];
}

public sealed class LoraAdapters : nn.Module
{
    public const string PeftPrefix = "base_model.model.";

    private readonly ModuleList<LoraAdapter> adapters;
    private readonly List<(string Path, Linear Layer)> targets;

    public LoraSettings Settings { get; }

    /// <summary>Module path (as in the checkpoint) and adapter of every adapted layer, in model order.</summary>
    public IEnumerable<(string Path, LoraAdapter Adapter)> Entries => targets.Select((t, i) => (t.Path, adapters[i]));

    private LoraAdapters(LoraSettings settings, List<(string, Linear)> targets, List<LoraAdapter> made) : base(nameof(LoraAdapters))
    {
        Settings = settings;
        this.targets = targets;
        adapters = new ModuleList<LoraAdapter>(made.ToArray());
        RegisterComponents();
    }

    /// <summary>Adds adapters (A from <paramref name="seed"/>, B = 0) to the model's matching layers and freezes the model.</summary>
    public static LoraAdapters Attach(DeepSeekForCausalLM model, LoraSettings s, long seed)
    {
        if (s.Rank < 1) throw new ArgumentException($"lora.rank: must be >= 1, got {s.Rank}");
        if (s.Dropout is < 0 or >= 1) throw new ArgumentException($"lora.dropout: must be in [0, 1), got {s.Dropout}");
        var found = model.named_modules()
            .Where(m => m.module is Linear && m.name.StartsWith("model.layers.", StringComparison.Ordinal)
                        && s.TargetModules.Contains(m.name[(m.name.LastIndexOf('.') + 1)..]))
            .Select(m => (m.name, (Linear)m.module)).ToList();
        if (found.Count == 0)
            throw new ArgumentException($"lora.target_modules: [{string.Join(", ", s.TargetModules)}] match no linear layer of the model " +
                $"(attention: {string.Join(", ", LoraSettings.AttentionModules)}; dense and shared-expert MLPs: gate_proj, up_proj, down_proj)");
        if (found.Any(f => f.Item2.Lora is not null)) throw new InvalidOperationException("the model already has LoRA adapters");
        foreach (var p in model.parameters()) p.requires_grad = false;
        var gen = new Generator((ulong)seed);
        var made = found.Select(f => new LoraAdapter(f.Item2.InFeatures, f.Item2.OutFeatures, s.Rank, s.Alpha, s.Dropout, gen, f.Item2.Weight.device)).ToList();
        for (int i = 0; i < found.Count; i++) found[i].Item2.Lora = made[i];
        return new LoraAdapters(s, found, made);
    }

    /// <summary>The adapters' tensors under PEFT's names (copies on the CPU).</summary>
    public Dictionary<string, Tensor> PeftStateDict()
    {
        var d = new Dictionary<string, Tensor>();
        foreach (var (path, a) in Entries)
        {
            d[$"{PeftPrefix}{path}.lora_A.weight"] = a.A.detach().cpu().clone();
            d[$"{PeftPrefix}{path}.lora_B.weight"] = a.B.detach().cpu().clone();
        }
        return d;
    }

    /// <summary>Loads adapter tensors saved under PEFT's names; every adapter's pair must be there with its shape.</summary>
    public void LoadPeftStateDict(IReadOnlyDictionary<string, Tensor> state, string source)
    {
        using var _ = no_grad();
        var expected = new HashSet<string>();
        foreach (var (path, a) in Entries)
            foreach (var (suffix, p) in new[] { ("lora_A", a.A), ("lora_B", a.B) })
            {
                string key = $"{PeftPrefix}{path}.{suffix}.weight";
                expected.Add(key);
                if (!state.TryGetValue(key, out var t)) throw new InvalidDataException($"{source}: missing adapter tensor '{key}'");
                if (!t.shape.SequenceEqual(p.shape))
                    throw new InvalidDataException($"{source}: '{key}' has shape [{string.Join(", ", t.shape)}], the adapter has [{string.Join(", ", p.shape)}]");
                p.copy_(t);
            }
        var extra = state.Keys.Where(k => !expected.Contains(k)).ToList();
        if (extra.Count > 0) throw new InvalidDataException($"{source}: adapter tensors for layers this model has no adapter on: {string.Join(", ", extra.Take(5))}");
    }

    /// <summary>Folds every adapter into its base weight (W += (alpha / r) B A) and removes the adapters from the model.</summary>
    public void Fold()
    {
        using var _ = no_grad();
        foreach (var (t, a) in targets.Zip(adapters))
        {
            using var scope = NewDisposeScope();
            t.Layer.Weight.add_(a.Delta().to(t.Layer.Weight.dtype));
            t.Layer.Lora = null;
        }
    }

    /// <summary>Until disposed, the model computes without its adapters (the base model: GRPO's reference policy).</summary>
    public IDisposable Disabled()
    {
        foreach (var t in targets) t.Layer.Lora = null;
        return new Restore(() => { foreach (var (t, a) in targets.Zip(adapters)) t.Layer.Lora = a; });
    }

    /// <summary>Until disposed, the adapters are folded into the base weights (W + (alpha / r) B A, computed in fp32 and
    /// stored in W's dtype) and detached; disposing puts the saved base weights back bit for bit and re-attaches them.
    /// Extra memory: a copy of the adapted weights.</summary>
    public IDisposable Merged()
    {
        using var _ = no_grad();
        var saved = new List<Tensor>(targets.Count);
        foreach (var (t, a) in targets.Zip(adapters))
        {
            using var scope = NewDisposeScope();
            saved.Add(t.Layer.Weight.detach().clone().DetachFromDisposeScope());
            t.Layer.Weight.copy_(t.Layer.Weight.to(ScalarType.Float32) + a.Delta());
            t.Layer.Lora = null;
        }
        return new Restore(() =>
        {
            using var noGrad = no_grad();
            foreach (var ((t, a), w) in targets.Zip(adapters).Zip(saved))
            {
                t.Layer.Weight.copy_(w);
                w.Dispose();
                t.Layer.Lora = a;
            }
        });
    }

    private sealed class Restore(Action undo) : IDisposable
    {
        private Action? _undo = undo;
        public void Dispose()
        {
            _undo?.Invoke();
            _undo = null;
        }
    }

    /// <summary>Removes the adapters from the model's layers (the base model computes alone again).</summary>
    public void Remove()
    {
        foreach (var t in targets) t.Layer.Lora = null;
    }
}
