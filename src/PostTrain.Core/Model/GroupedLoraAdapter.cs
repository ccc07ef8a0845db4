// LoRA for stacked routed experts: one low-rank update per expert, A (E, r, in) and B (E, out, r), applied inside the
// grouped-GEMM path: rows grouped by expert (counts[e] rows for expert e) get (alpha / r) * B_e A_e dropout(x), as two
// grouped GEMMs through ExpertCompute (the CUDA grouped kernel or the CPU loop), in fp32. Init as LoraAdapter, per
// expert: A_e ~ U(-1/sqrt(in), 1/sqrt(in)) from the seed's generator, B = 0, so a new adapter changes nothing. Saved
// as peft's LoRA on transformers 5's fused expert parameters or per expert (PeftLayout, PeftTensor).
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PostTrain.Core.Model;

public sealed class GroupedLoraAdapter : nn.Module
{
    private readonly Parameter lora_A;   // (E, r, in)
    private readonly Parameter lora_B;   // (E, out, r)
    private readonly double dropout;

    public int Rank { get; }
    public double Scale { get; }

    public GroupedLoraAdapter(int experts, int inFeatures, int outFeatures, int rank, double alpha, double dropout, Generator gen, Device? device = null)
        : base(nameof(GroupedLoraAdapter))
    {
        Rank = rank;
        Scale = alpha / rank;
        this.dropout = dropout;
        double bound = 1.0 / Math.Sqrt(inFeatures);
        lora_A = nn.Parameter((rand([experts, rank, inFeatures], generator: gen) * (2 * bound) - bound).to(device ?? CPU));
        lora_B = nn.Parameter(zeros(experts, outFeatures, rank, device: device));
        RegisterComponents();
    }

    public Parameter A => lora_A;
    public Parameter B => lora_B;

    /// <summary>xSorted (R, in) grouped by expert, counts (E) -> (R, out) fp32: (alpha / r) B_e A_e x per row.</summary>
    public Tensor Forward(Tensor xSorted, Tensor counts, long[]? hostCounts)
    {
        using var scope = NewDisposeScope();
        var h = xSorted.to(ScalarType.Float32);
        if (training) h = LoraDropout.Apply(h, dropout);
        var low = ExpertCompute.GroupedLinear(h, lora_A, counts, hostCounts, PostTrain.Core.Precision.Precision.Fp32);   // (R, r)
        return (ExpertCompute.GroupedLinear(low, lora_B, counts, hostCounts, PostTrain.Core.Precision.Precision.Fp32) * Scale)
            .MoveToOuterDisposeScope();                                                                                   // (R, out)
    }

    /// <summary>The update folded into the stacked weight: (alpha / r) B_e A_e per expert, (E, out, in).</summary>
    public Tensor Delta() => matmul(lora_B, lora_A) * Scale;
}
