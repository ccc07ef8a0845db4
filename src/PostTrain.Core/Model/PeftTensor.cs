// One adapter tensor as a PEFT adapter file holds it: its key, its shape, a CPU copy for saving and a loader that writes
// a saved tensor back into the adapters. Routed-expert stacks in either PeftLayout:
// - PerExpert: <experts>.{e}.<proj>.lora_A.weight = A[e] (r, in), .lora_B.weight = B[e] (out, r).
// - FusedExperts (peft's ParamWrapper on transformers 5's fused experts, see FusedExpertLora):
//   gate_up_proj (E, 2I, H): A (E*2r, H), B (2I, 2r*E) from gate_proj + up_proj; down_proj (E, H, I): A (E*r, I), B (H, r*E).
//   peft wraps gate_up_proj first (transformers registers it first), so with down_proj also adapted the gate_up wrapper
//   is the inner one: <experts>.base_layer.lora_A.weight (gate_up) and <experts>.lora_A.weight (down); alone, either
//   is <experts>.lora_A.weight.
using static TorchSharp.torch;

namespace PostTrain.Core.Model;

public sealed record PeftTensor(string Key, long[] Shape, Func<Tensor> Save, Action<Tensor, string> Load)
{
    /// <summary>A tensor saved as it is (a LoRA A or B, or one expert's slice of a grouped one).</summary>
    public static PeftTensor Of(string key, Tensor p) => new(key, p.shape, () => p.detach().cpu().clone(), (t, _) => p.copy_(t));

    /// <summary>An expert stack's adapters (by projection) per expert, under <paramref name="prefix"/> (…mlp.experts).</summary>
    public static IEnumerable<PeftTensor> PerExpert(string prefix, IReadOnlyDictionary<string, GroupedLoraAdapter> byProj) =>
        byProj.SelectMany(kv => Enumerable.Range(0, (int)kv.Value.A.shape[0]).SelectMany(e => new[]
        {
            Of($"{prefix}.{e}.{kv.Key}.lora_A.weight", kv.Value.A[e]), Of($"{prefix}.{e}.{kv.Key}.lora_B.weight", kv.Value.B[e]),
        }));

    /// <summary>An expert stack's adapters as peft's LoRA on the fused parameters gate_up_proj and down_proj.</summary>
    public static IEnumerable<PeftTensor> Fused(string prefix, IReadOnlyDictionary<string, GroupedLoraAdapter> byProj)
    {
        bool gate = byProj.ContainsKey("gate_proj"), up = byProj.ContainsKey("up_proj");
        if (gate != up)
            throw new InvalidOperationException($"{prefix}: peft's fused expert layout needs adapters on both gate_proj and up_proj " +
                "(they are one parameter, gate_up_proj); this stack has only " + (gate ? "gate_proj" : "up_proj"));
        byProj.TryGetValue("down_proj", out var down);
        var list = new List<PeftTensor>();
        if (gate) list.AddRange(Pair(down is null ? prefix : $"{prefix}.base_layer", [byProj["gate_proj"], byProj["up_proj"]]));
        if (down is not null) list.AddRange(Pair(prefix, [down]));
        return list;
    }

    private static PeftTensor[] Pair(string prefix, GroupedLoraAdapter[] parts)
    {
        long experts = parts[0].A.shape[0], r = parts[0].A.shape[1], inF = parts[0].A.shape[2];
        long[] outs = parts.Select(p => p.B.shape[1]).ToArray();
        long rank = parts.Length * r, outF = outs.Sum();
        string keyA = $"{prefix}.lora_A.weight", keyB = $"{prefix}.lora_B.weight";
        var a = new PeftTensor(keyA, [experts * rank, inF],
            () => FusedExpertLora.FuseA(parts.Select(p => p.A.detach().cpu()).ToArray()),
            (t, _) =>
            {
                foreach (var (p, split) in parts.Zip(FusedExpertLora.SplitA(t, experts, parts.Length))) p.A.copy_(split);
            });
        var b = new PeftTensor(keyB, [outF, rank * experts],
            () => FusedExpertLora.FuseB(parts.Select(p => p.B.detach().cpu()).ToArray()),
            (t, source) =>
            {
                var split = FusedExpertLora.SplitB(t, experts, outs) ?? throw new InvalidDataException(
                    $"{source}: '{keyB}' is not block-diagonal per expert (its gate_proj and up_proj halves share ranks, as an adapter " +
                    "trained fused by peft does); PostTrain keeps gate_proj and up_proj as separate adapters and cannot load it exactly");
                foreach (var (p, s) in parts.Zip(split)) p.B.copy_(s);
            });
        return [a, b];
    }
}
