// Options for CheckpointLoader.LoadInto. Patterns are .NET regular expressions searched anywhere in
// the name (like transformers' _keys_to_ignore_on_load_unexpected), e.g. @"rotary_emb\.inv_freq".
namespace PostTrain.Core.Checkpoints;

public sealed record CheckpointLoadOptions
{
    /// <summary>Checkpoint tensors the model does not have that are silently skipped.</summary>
    public IReadOnlyList<string> AllowUnexpected { get; init; } = [];

    /// <summary>Model tensors the checkpoint may lack; they keep their current values.</summary>
    public IReadOnlyList<string> AllowMissing { get; init; } = [];

    /// <summary>Dequantise DeepSeek-V3 FP8 weights (F8_E4M3 "x" + "x_scale_inv") before copying; see SafeTensorsLoadOptions.</summary>
    public bool DequantizeFp8 { get; init; }
}
