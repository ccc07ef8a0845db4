// Python slices obj[start:stop:step] of lists, tuples and strings (by code point), with negative indices and
// steps as in CPython's slice.indices().
namespace PostTrain.Data.Templates.Jinja;

public static class Slicing
{
    public static object? Slice(object? obj, object? start, object? stop, object? step)
    {
        if (obj is Undefined u) throw u.Error();
        IList<object?> items = obj switch
        {
            List<object?> l => l,
            PyTuple t => t.Items,
            string s => PyStr.CodePoints(s),
            _ => throw JinjaException.Type($"'{PyTypes.Name(obj)}' object is not subscriptable"),
        };
        var picked = Indices(items.Count, start, stop, step).Select(i => items[i]).ToList();
        return obj switch
        {
            string => string.Concat(picked.Cast<string>()),
            PyTuple => new PyTuple([.. picked]),
            _ => picked,
        };
    }

    private static long? Int(object? v, string what) => v switch
    {
        null => null,
        long l => l,
        bool b => b ? 1 : 0,
        _ => throw JinjaException.Type($"slice {what} must be an integer or None, not {PyTypes.Name(v)}"),
    };

    public static IEnumerable<int> Indices(int length, object? start, object? stop, object? step)
    {
        long st = Int(step, "step") ?? 1;
        if (st == 0) throw new JinjaException("value_error", "slice step cannot be zero");
        long lo, hi;
        long? a = Int(start, "start"), b = Int(stop, "stop");
        if (st > 0)
        {
            lo = a is null ? 0 : Clamp(a.Value < 0 ? a.Value + length : a.Value, 0, length);
            hi = b is null ? length : Clamp(b.Value < 0 ? b.Value + length : b.Value, 0, length);
            for (long i = lo; i < hi; i += st) yield return (int)i;
        }
        else
        {
            lo = a is null ? length - 1 : Clamp(a.Value < 0 ? a.Value + length : a.Value, -1, length - 1);
            hi = b is null ? -1 : Clamp(b.Value < 0 ? b.Value + length : b.Value, -1, length - 1);
            for (long i = lo; i > hi; i += st) yield return (int)i;
        }
    }

    private static long Clamp(long v, long lo, long hi) => Math.Max(lo, Math.Min(hi, v));
}
