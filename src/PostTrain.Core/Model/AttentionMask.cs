// What may attend to what. Plain causal (no tensor, fastest path), causal with key padding (padded batches:
// 1 = real token), or causal within segments (packed sequences: tokens attend only inside their own example).
// A position always attends to itself, so padded rows stay finite (no all-masked softmax rows, no NaN in the loss).
using static TorchSharp.torch;

namespace PostTrain.Core.Model;

public sealed record AttentionMask(Tensor? KeyPadding = null, Tensor? SegmentIds = null)
{
    public static readonly AttentionMask Causal = new();
    public bool IsPlainCausal => KeyPadding is null && SegmentIds is null;

    /// <summary>(B, T) bool: the real tokens (not padding: key padding 1 and segment id >= 0), or null for a plain causal
    /// mask (every token is real).</summary>
    public Tensor? RealTokens()
    {
        if (IsPlainCausal) return null;
        var real = KeyPadding?.to(ScalarType.Bool);
        if (SegmentIds is not null) real = real is null ? SegmentIds.ge(0) : real & SegmentIds.ge(0);
        return real;
    }

    /// <summary>Boolean mask (B, 1, Tq, Tk), true = may attend, for queries at the last Tq of Tk key positions.</summary>
    public Tensor Build(long batch, long tq, long tk, Device device)
    {
        using var scope = NewDisposeScope();
        var qPos = arange(tk - tq, tk, device: device).view(-1, 1);                 // (Tq, 1)
        var kPos = arange(0, tk, device: device).view(1, -1);                       // (1, Tk)
        var allowed = (kPos <= qPos).view(1, 1, tq, tk).expand(batch, 1, tq, tk);   // (B, 1, Tq, Tk)
        if (KeyPadding is not null)
            allowed = allowed & KeyPadding.to(ScalarType.Bool).view(batch, 1, 1, tk);
        if (SegmentIds is not null)
        {
            var seg = SegmentIds.view(batch, 1, 1, tk);
            var segQ = SegmentIds.narrow(1, tk - tq, tq).view(batch, 1, tq, 1);
            allowed = allowed & (seg == segQ);
        }
        allowed = allowed | (kPos == qPos).view(1, 1, tq, tk);
        return allowed.contiguous().MoveToOuterDisposeScope();
    }
}
