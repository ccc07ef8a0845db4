// The address of a tensor's first element (torch's data_ptr(): host memory for CPU tensors, device memory for CUDA
// tensors), read through LibTorchSharp's exported THSTensor_data, so collectives work on tensors in place.
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace PostTrain.Core.Distributed;

internal static class TensorPointer
{
    [DllImport("LibTorchSharp")] private static extern IntPtr THSTensor_data(IntPtr tensor);

    /// <summary>data_ptr() of a contiguous tensor; a non-contiguous one is a programming error.</summary>
    public static IntPtr Of(Tensor t)
    {
        if (!t.is_contiguous()) throw new ArgumentException("collectives need contiguous tensors", nameof(t));
        return t.numel() == 0 ? IntPtr.Zero : THSTensor_data(t.Handle);
    }
}
