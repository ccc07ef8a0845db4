// Stochastic rounding of fp32 values to bf16: a value between two neighbouring bf16 numbers lo < x < hi becomes hi
// with probability (x - lo) / (hi - lo) and lo otherwise, so the rounded value equals x in expectation (round to
// nearest would drop every change smaller than half of bf16's spacing, about 0.2% of the value). Written with plain
// tensor ops (no bit reinterpretation): the nearest bf16 value r, its neighbour on x's side (nextafter), and one
// uniform draw per element from the tensor's device generator. Values that are exactly representable, infinite or
// NaN come back as round to nearest gives them.
using static TorchSharp.torch;

namespace PostTrain.Core.Precision;

public static class StochasticRounding
{
    /// <summary>x (float32) rounded stochastically to bfloat16. generator: null draws from the device's default
    /// generator (torch.manual_seed / torch.cuda.manual_seed).</summary>
    public static Tensor ToBf16(Tensor x, Generator? generator = null)
    {
        if (x.dtype != ScalarType.Float32)
            throw new ArgumentException($"Stochastic rounding takes float32 values, got {x.dtype}.", nameof(x));
        using var scope = NewDisposeScope();
        var nearest = x.to(ScalarType.BFloat16);
        var nearestF = nearest.to(ScalarType.Float32);
        // the other neighbour lies on x's side of the nearest value
        var toward = where(nearestF > x, float.NegativeInfinity, float.PositiveInfinity).to(ScalarType.BFloat16);
        var other = nearest.nextafter(toward);
        var gap = other.to(ScalarType.Float32).sub_(nearestF);
        var chance = (x - nearestF).div_(gap);                 // in [0, 1/2]; 0 where x is representable; NaN past the finite range
        var u = rand(x.shape, dtype: ScalarType.Float32, device: x.device, generator: generator);
        return where(u < chance, other, nearest).MoveToOuterDisposeScope();
    }
}
