// LoRA adapters on a model's linear layers, PEFT style: every Linear of the main decoder whose module name (the last
// path segment, e.g. q_a_proj, kv_b_proj, o_proj, gate_proj) is in target_modules gets a LoraAdapter; the base
// model's parameters are frozen, so an optimizer over this container trains only the adapters. PEFT's key names:
// base_model.model.<module path>.lora_A.weight / .lora_B.weight, e.g.
// base_model.model.model.layers.0.self_attn.q_a_proj.lora_A.weight. Fold() adds (alpha / r) B A into each base weight
// (what `posttrain merge` writes). Disabled() switches the adapters off for a scope (the base model computes alone: GRPO's
// reference model without a second copy); Merged() folds them into the base weights for a scope and restores the
// saved weights exactly afterwards (for paths that read the weights directly, such as the generation engine).
// Routed experts (RoutedExperts): the stacked experts' projections named in target_modules get a GroupedLoraAdapter
// (A (E, r, in), B (E, out, r), applied inside the grouped GEMMs), saved in the settings' PeftLayout: fused as peft with
// transformers 5 holds them (base_model.model.model.layers.L.mlp.experts[.base_layer].lora_A.weight, FusedExpertLora), or
// per expert as transformers 4 named them (...mlp.experts.{e}.gate_proj.lora_A.weight (r, in)).
// Simplification: MTP modules get no adapters.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PostTrain.Core.Model;

public sealed record LoraSettings(int Rank, double Alpha, double Dropout, IReadOnlyList<string> TargetModules, bool RoutedExperts = false,
    PeftLayout Layout = PeftLayout.FusedExperts)
{
    public static readonly IReadOnlyList<string> ExpertProjections = ["gate_proj", "up_proj", "down_proj"];

    /// <summary>MLA's projections (with and without a q LoRA rank): PEFT's usual attention-only targets for DeepSeek-V3.</summary>
    public static readonly IReadOnlyList<string> AttentionModules = ["q_proj", "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"];
}

public sealed class LoraAdapters : nn.Module
{
    public const string PeftPrefix = "base_model.model.";

    private readonly ModuleList<LoraAdapter> adapters;
    private readonly List<(string Path, Linear Layer)> targets;
    private readonly ModuleList<GroupedLoraAdapter> grouped;
    private readonly List<(string Path, Experts Layer, string Proj)> expertTargets;

    public LoraSettings Settings { get; }

    /// <summary>Module path (as in the checkpoint) and adapter of every adapted layer, in model order.</summary>
    public IEnumerable<(string Path, LoraAdapter Adapter)> Entries => targets.Select((t, i) => (t.Path, adapters[i]));

    /// <summary>Path of every adapted expert stack (model.layers.L.mlp.experts), its projection and its grouped adapter.</summary>
    public IEnumerable<(string Path, string Proj, GroupedLoraAdapter Adapter)> ExpertEntries =>
        expertTargets.Select((t, i) => (t.Path, t.Proj, grouped[i]));

    private LoraAdapters(LoraSettings settings, List<(string, Linear)> targets, List<LoraAdapter> made,
        List<(string, Experts, string)> expertTargets, List<GroupedLoraAdapter> madeGrouped) : base(nameof(LoraAdapters))
    {
        Settings = settings;
        this.targets = targets;
        adapters = new ModuleList<LoraAdapter>(made.ToArray());
        this.expertTargets = expertTargets;
        grouped = new ModuleList<GroupedLoraAdapter>(madeGrouped.ToArray());
        RegisterComponents();
    }

    private static void Set(Experts e, string proj, GroupedLoraAdapter? a)
    {
        if (proj == "gate_proj") e.GateLora = a;
        else if (proj == "up_proj") e.UpLora = a;
        else e.DownLora = a;
    }

    private static Parameter StackOf(Experts e, string proj) => proj == "gate_proj" ? e.GateProj : proj == "up_proj" ? e.UpProj : e.DownProj;

    /// <summary>Adds adapters (A from <paramref name="seed"/>, B = 0) to the model's matching layers and freezes the model.</summary>
    public static LoraAdapters Attach(DeepSeekForCausalLM model, LoraSettings s, long seed)
    {
        if (s.Rank < 1) throw new ArgumentException($"lora.rank: must be >= 1, got {s.Rank}");
        if (s.Dropout is < 0 or >= 1) throw new ArgumentException($"lora.dropout: must be in [0, 1), got {s.Dropout}");
        var found = model.named_modules()
            .Where(m => m.module is Linear && m.name.StartsWith("model.layers.", StringComparison.Ordinal)
                        && s.TargetModules.Contains(m.name[(m.name.LastIndexOf('.') + 1)..]))
            .Select(m => (m.name, (Linear)m.module)).ToList();
        var experts = !s.RoutedExperts ? [] : model.named_modules()
            .Where(m => m.module is Experts && m.name.StartsWith("model.layers.", StringComparison.Ordinal))
            .SelectMany(m => LoraSettings.ExpertProjections.Where(s.TargetModules.Contains).Select(p => (m.name, (Experts)m.module, p))).ToList();
        if (s.RoutedExperts && experts.Count == 0)
            throw new ArgumentException($"lora.routed_experts: target_modules [{string.Join(", ", s.TargetModules)}] name no expert projection " +
                $"({string.Join(", ", LoraSettings.ExpertProjections)}), or the model has no routed experts");
        if (s.Layout == PeftLayout.FusedExperts && s.RoutedExperts && s.TargetModules.Contains("gate_proj") != s.TargetModules.Contains("up_proj"))
            throw new ArgumentException($"lora.target_modules: [{string.Join(", ", s.TargetModules)}] names one of gate_proj and up_proj; with " +
                "routed_experts, lora.peft_layout fused_experts (peft with transformers 5) fuses them into mlp.experts.gate_up_proj: name both, " +
                "or set lora.peft_layout: per_expert");
        if (found.Count == 0 && experts.Count == 0)
            throw new ArgumentException($"lora.target_modules: [{string.Join(", ", s.TargetModules)}] match no linear layer of the model " +
                $"(attention: {string.Join(", ", LoraSettings.AttentionModules)}; dense and shared-expert MLPs: gate_proj, up_proj, down_proj)");
        if (found.Any(f => f.Item2.Lora is not null)) throw new InvalidOperationException("the model already has LoRA adapters");
        foreach (var p in model.parameters()) p.requires_grad = false;
        var gen = new Generator((ulong)seed);
        var made = found.Select(f => new LoraAdapter(f.Item2.InFeatures, f.Item2.OutFeatures, s.Rank, s.Alpha, s.Dropout, gen, f.Item2.Weight.device)).ToList();
        for (int i = 0; i < found.Count; i++) found[i].Item2.Lora = made[i];
        var madeGrouped = experts.Select(x =>
        {
            var w = StackOf(x.Item2, x.p);                                                         // (E, out, in)
            return new GroupedLoraAdapter((int)w.shape[0], (int)w.shape[2], (int)w.shape[1], s.Rank, s.Alpha, s.Dropout, gen, w.device);
        }).ToList();
        for (int i = 0; i < experts.Count; i++) Set(experts[i].Item2, experts[i].p, madeGrouped[i]);
        return new LoraAdapters(s, found, made, experts, madeGrouped);
    }

    /// <summary>The adapters' tensors under PEFT's names in the settings' layout (copies on the CPU).</summary>
    public Dictionary<string, Tensor> PeftStateDict()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        return PeftTensors(Settings.Layout).ToDictionary(t => t.Key, t => t.Save().DetachFromDisposeScope());
    }

    /// <summary>Loads adapter tensors saved under PEFT's names in <paramref name="layout"/> (either layout loads into the same
    /// adapters); every tensor the adapters need must be there with its shape, and nothing else.</summary>
    public void LoadPeftStateDict(IReadOnlyDictionary<string, Tensor> state, string source, PeftLayout layout)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var expected = new HashSet<string>();
        foreach (var slot in PeftTensors(layout))
        {
            expected.Add(slot.Key);
            if (!state.TryGetValue(slot.Key, out var t)) throw new InvalidDataException($"{source}: missing adapter tensor '{slot.Key}'");
            if (!t.shape.SequenceEqual(slot.Shape))
                throw new InvalidDataException($"{source}: '{slot.Key}' has shape [{string.Join(", ", t.shape)}], the adapter has [{string.Join(", ", slot.Shape)}]");
            slot.Load(t, source);
        }
        var extra = state.Keys.Where(k => !expected.Contains(k)).ToList();
        if (extra.Count > 0) throw new InvalidDataException($"{source}: adapter tensors for layers this model has no adapter on: {string.Join(", ", extra.Take(5))}");
    }

    /// <summary>Every adapter tensor under its PEFT name in <paramref name="layout"/>: shape, a CPU copy, a loader.</summary>
    public IEnumerable<PeftTensor> PeftTensors(PeftLayout layout)
    {
        foreach (var (path, a) in Entries)
        {
            yield return PeftTensor.Of($"{PeftPrefix}{path}.lora_A.weight", a.A);
            yield return PeftTensor.Of($"{PeftPrefix}{path}.lora_B.weight", a.B);
        }
        foreach (var stack in ExpertEntries.GroupBy(x => x.Path))
        {
            var byProj = stack.ToDictionary(x => x.Proj, x => x.Adapter);
            var slots = layout == PeftLayout.PerExpert ? PeftTensor.PerExpert($"{PeftPrefix}{stack.Key}", byProj) : PeftTensor.Fused($"{PeftPrefix}{stack.Key}", byProj);
            foreach (var slot in slots) yield return slot;
        }
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
        foreach (var (t, a) in expertTargets.Zip(grouped))
        {
            using var scope = NewDisposeScope();
            var w = StackOf(t.Layer, t.Proj);
            w.add_(a.Delta().to(w.dtype));
            Set(t.Layer, t.Proj, null);
        }
    }

    /// <summary>Until disposed, the model computes without its adapters (the base model: GRPO's reference policy).</summary>
    public IDisposable Disabled()
    {
        Remove();
        return new PostTrain.Core.Runtime.OnDispose(Reattach);
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
        }
        foreach (var (t, a) in expertTargets.Zip(grouped))
        {
            using var scope = NewDisposeScope();
            var w = StackOf(t.Layer, t.Proj);
            saved.Add(w.detach().clone().DetachFromDisposeScope());
            w.copy_(w.to(ScalarType.Float32) + a.Delta());
        }
        Remove();
        return new PostTrain.Core.Runtime.OnDispose(() =>
        {
            using var noGrad = no_grad();
            var weights = targets.Select(t => (Tensor)t.Layer.Weight).Concat(expertTargets.Select(t => (Tensor)StackOf(t.Layer, t.Proj)));
            foreach (var (w, keep) in weights.Zip(saved))
            {
                w.copy_(keep);
                keep.Dispose();
            }
            Reattach();
        });
    }

    /// <summary>Removes the adapters from the model's layers (the base model computes alone again).</summary>
    public void Remove()
    {
        foreach (var t in targets) t.Layer.Lora = null;
        foreach (var t in expertTargets) Set(t.Layer, t.Proj, null);
    }

    private void Reattach()
    {
        foreach (var (t, a) in targets.Zip(adapters)) t.Layer.Lora = a;
        foreach (var (t, a) in expertTargets.Zip(grouped)) Set(t.Layer, t.Proj, a);
    }
}
