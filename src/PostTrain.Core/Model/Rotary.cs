// Rotary position embedding on the qk_rope_head_dim dims, with optional YaRN scaling, as Hugging Face computes it:
// inv_freq = 1 / theta^(2i/d); YaRN blends interpolated (freq / factor) and extrapolated frequencies with a linear
// ramp between the correction dims of beta_fast and beta_slow, and scales cos/sin by the attention factor.
// Interleaved checkpoints (rope_interleave) rotate pairs (x0,x1),(x2,x3)...; the result is laid out evens-then-odds,
// exactly as transformers does; q and k get the same layout, so q.k is unchanged.
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Model;

public sealed class Rotary
{
    private readonly float[] invFreq;   // (d/2)
    public double AttentionFactor { get; }
    public int Dim { get; }
    public bool Interleave { get; }

    public Rotary(ModelConfig c)
    {
        Dim = c.QkRopeHeadDim;
        Interleave = c.RopeInterleave;
        (invFreq, AttentionFactor) = ComputeInvFreq(c);
    }

    /// <summary>The inverse frequencies (fp32, as torch computes them) and the cos/sin scaling factor.</summary>
    public static (float[] InvFreq, double AttentionFactor) ComputeInvFreq(ModelConfig c)
    {
        int d = c.QkRopeHeadDim;
        double theta = c.RopeTheta;
        var inv = new float[d / 2];
        // torch: base ** (arange(0, d, 2).float() / d) in fp32, then 1 / that.
        var pos = new float[d / 2];
        for (int i = 0; i < d / 2; i++) pos[i] = MathF.Pow((float)theta, (2 * i) / (float)d);
        if (c.Yarn is not { } y)
        {
            for (int i = 0; i < d / 2; i++) inv[i] = 1f / pos[i];
            return (inv, 1.0);
        }
        static double GetMscale(double scale, double m = 1) => scale <= 1 ? 1.0 : 0.1 * m * Math.Log(scale) + 1.0;
        double factor = y.Factor;
        double attn = y.AttentionFactor ?? (y.Mscale is { } ms && ms != 0 && y.MscaleAllDim is { } ma && ma != 0
            ? GetMscale(factor, ms) / GetMscale(factor, ma)
            : GetMscale(factor));
        double CorrDim(double rot) => d * Math.Log(y.OriginalMaxPositionEmbeddings / (rot * 2 * Math.PI)) / (2 * Math.Log(theta));
        double low = CorrDim(y.BetaFast), high = CorrDim(y.BetaSlow);
        if (y.Truncate) { low = Math.Floor(low); high = Math.Ceiling(high); }
        low = Math.Max(low, 0); high = Math.Min(high, d - 1);
        if (low == high) high += 0.001;
        for (int i = 0; i < d / 2; i++)
        {
            float ramp = Math.Clamp((i - (float)low) / (float)(high - low), 0f, 1f);
            float extrapolationFactor = 1f - ramp;
            float extra = 1f / pos[i];
            float inter = 1f / ((float)factor * pos[i]);
            inv[i] = inter * (1 - extrapolationFactor) + extra * extrapolationFactor;
        }
        return (inv, attn);
    }

    private Tensor? invOnDevice;

    // The inverse frequencies on `device`, copied there once: a host-to-device copy per call could not be captured
    // in a CUDA graph (the training fast path computes the angles inside its captured step).
    private Tensor InvFreqOn(Device device)
    {
        if (device.type == DeviceType.CPU) return tensor(invFreq);
        var cached = invOnDevice;
        if (cached is null || cached.device_type != device.type || cached.device_index != device.index)
        {
            cached = tensor(invFreq).to(device).DetachFromDisposeScope();
            invOnDevice = cached;
        }
        return cached;   // not owned by the caller's dispose scope (detached)
    }

    /// <summary>cos, sin for positions (B, T) -> each (B, 1, T, d/2) in fp32, already scaled by the attention factor.</summary>
    public (Tensor Cos, Tensor Sin) Angles(Tensor positionIds)
    {
        using var scope = NewDisposeScope();
        var inv = InvFreqOn(positionIds.device);                                    // (d/2)
        var freqs = positionIds.to(ScalarType.Float32).unsqueeze(-1) * inv;          // (B, T, d/2)
        var cos = (freqs.cos() * AttentionFactor).unsqueeze(1);                       // (B, 1, T, d/2)
        var sin = (freqs.sin() * AttentionFactor).unsqueeze(1);
        return (cos.MoveToOuterDisposeScope(), sin.MoveToOuterDisposeScope());
    }

    /// <summary>Rotates x (B, heads, T, d) in x's dtype. Without autograd on CUDA one fused kernel does it
    /// (Kernels.DecodeKernels, equal to these ops in both dtypes).</summary>
    public Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        if (!x.requires_grad && x.dim() == 4 && PostTrain.Core.Kernels.DecodeKernels.For(x) is { } fused
            && PostTrain.Core.Kernels.DecodeKernels.RopeFits(x, cos, sin))
            return fused.Rope(x, cos, sin, Interleave);
        return ApplyPlain(x, cos, sin, Interleave);
    }

    /// <summary>The rotation in plain ops: cos/sin rounded to x's dtype, [x1 c - x2 s, x2 c + x1 s].</summary>
    public static Tensor ApplyPlain(Tensor x, Tensor cos, Tensor sin, bool interleave)
    {
        using var scope = NewDisposeScope();
        long Dim = x.shape[^1];
        var c = cos.to(x.dtype);
        var s = sin.to(x.dtype);
        Tensor x1, x2;
        if (interleave)
        {
            long half = Dim / 2;
            var pairs = x.unflatten(x.dim() - 1, [half, 2]);                         // (B, h, T, d/2, 2)
            x1 = pairs.select(-1, 0);
            x2 = pairs.select(-1, 1);
        }
        else
        {
            x1 = x.narrow(-1, 0, Dim / 2);
            x2 = x.narrow(-1, Dim / 2, Dim / 2);
        }
        return cat([x1 * c - x2 * s, x2 * c + x1 * s], -1).MoveToOuterDisposeScope();
    }
}
