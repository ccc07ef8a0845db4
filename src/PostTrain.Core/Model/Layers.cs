// Basic layers named as in Hugging Face checkpoints: Linear (weight (out, in)), RMSNorm (computed in fp32),
// and the dense SwiGLU MLP (down(silu(gate x) * up x)). Every linear layer in the model goes through
// Linear.Forward, the one place where the compute precision is applied.
using PostTrain.Core.Kernels;
using PostTrain.Core.Recompute;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PostTrain.Core.Model;

/// <summary>y = x W^T (+ b). W is an fp32 master weight; the matmul runs in x's dtype (fp32 or bf16), or in FP8.</summary>
public sealed class Linear : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;   // (out, in)
    private readonly Parameter? bias;    // (out)
    public int InFeatures { get; }
    public int OutFeatures { get; }

    public Linear(int inFeatures, int outFeatures, bool hasBias = false, Device? device = null) : base(nameof(Linear))
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        weight = nn.Parameter(empty(outFeatures, inFeatures, device: device));
        if (hasBias) bias = nn.Parameter(zeros(outFeatures, device: device));
        RegisterComponents();
    }

    public Parameter Weight => weight;
    public Parameter? Bias => bias;
    /// <summary>Fp32/Bf16 follow the activation dtype; Fp8 runs the FP8 recipe.</summary>
    public PostTrain.Core.Precision.Precision Precision { get; set; }

    /// <summary>A LoRA adapter added to this layer's output (owned by a LoraAdapters container), or null.</summary>
    public LoraAdapter? Lora { get; set; }

    public override Tensor forward(Tensor x)
    {
        var y = LinearCompute.Apply(x, weight, bias, Precision);
        return Lora is { } lora ? y + lora.forward(x).to(y.dtype) : y;
    }
}

/// <summary>Root-mean-square norm over the last dimension, computed in fp32, cast back to the input dtype.</summary>
public sealed class RMSNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;   // (dim)
    private readonly double eps;

    public RMSNorm(int dim, double eps = 1e-6, Device? device = null) : base(nameof(RMSNorm))
    {
        this.eps = eps;
        weight = nn.Parameter(ones(dim, device: device));
        RegisterComponents();
    }

    public Parameter Weight => weight;
    internal double Eps => eps;

    public override Tensor forward(Tensor x)
    {
        if (FusedKernels.For(x) is { } kernels) return FusedOps.RmsNorm(x, weight, eps, kernels);   // CUDA: one kernel each way
        using var scope = NewDisposeScope();
        var h = x.to(ScalarType.Float32);
        var variance = h.pow(2).mean([-1L], keepdim: true);
        h = h * rsqrt(variance + eps);
        return (weight.to(x.dtype) * h.to(x.dtype)).MoveToOuterDisposeScope();   // stays in the activation dtype (bf16 stays bf16)
    }

    /// <summary>forward(x); with <paramref name="recompute"/> as a recompute region: backward keeps x only and computes
    /// the norm again (RecomputeMode.Selective).</summary>
    public Tensor Forward(Tensor x, bool recompute) =>
        recompute ? ActivationRecompute.Run(a => [forward(a[0]!)], [x], [weight])[0] : forward(x);
}

/// <summary>Dense SwiGLU MLP (also the shared experts): down(silu(gate x) * up x).</summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear gate_proj, up_proj, down_proj;

    public Mlp(int hidden, int intermediate, Device? device = null) : base(nameof(Mlp))
    {
        gate_proj = new Linear(hidden, intermediate, device: device);
        up_proj = new Linear(hidden, intermediate, device: device);
        down_proj = new Linear(intermediate, hidden, device: device);
        RegisterComponents();
    }

    internal Linear GateProj => gate_proj;
    internal Linear UpProj => up_proj;
    internal Linear DownProj => down_proj;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return down_proj.forward(FusedOps.SiluMul(gate_proj.forward(x), up_proj.forward(x))).MoveToOuterDisposeScope();
    }
}

/// <summary>Token embedding (vocab, hidden). Own module so the weight is allocated directly on the target device
/// (TorchSharp's nn.Embedding initialises on the CPU first, which costs seconds and gigabytes for big vocabularies).</summary>
public sealed class Embedding : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;   // (V, H)

    public Embedding(int vocab, int hidden, Device? device = null) : base(nameof(Embedding))
    {
        weight = nn.Parameter(empty(vocab, hidden, device: device));
        RegisterComponents();
    }

    public Parameter Weight => weight;

    /// <summary>ids (...) int64 -> (..., H).</summary>
    public override Tensor forward(Tensor ids) => weight.index_select(0, ids.reshape(-1)).view([.. ids.shape, weight.shape[1]]);
}
