// Options for SafeTensors.Load.
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Checkpoints;

public sealed record SafeTensorsLoadOptions
{
    /// <summary>
    /// Dequantise DeepSeek-V3 FP8 weights: an F8_E4M3 tensor "x" with a sibling "x_scale_inv" is
    /// returned as x.to(f32) * scale_inv per 128x128 block (in <see cref="DequantizedDtype"/>), and the
    /// scale tensors are not returned. F8 tensors without a scale are returned as stored.
    /// </summary>
    public bool DequantizeFp8 { get; init; }

    /// <summary>Dtype of dequantised FP8 weights (default float32).</summary>
    public ScalarType DequantizedDtype { get; init; } = ScalarType.Float32;

    /// <summary>Where the tensors end up (default CPU). Data is read on the CPU, then moved.</summary>
    public Device? Device { get; init; }

    /// <summary>Loads only the tensors whose (post-dequantisation) name passes this filter.</summary>
    public Func<string, bool>? Filter { get; init; }

    /// <summary>Applied to each tensor as it is read (name, tensor) before the next one is read; the tensor it returns
    /// is kept and the one read is freed (e.g. this rank's rows of a large stack, so the host never holds them all).</summary>
    public Func<string, Tensor, Tensor>? Transform { get; init; }
}
