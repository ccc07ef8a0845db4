// Orders strings by Unicode code point, which is how Python sorts str keys and how Rust compares
// String (byte-wise UTF-8 gives the same order). C#'s ordinal comparison works on UTF-16 code units
// and differs for characters above U+FFFF, so files written here sort keys like the reference tools.
using System.Text;

namespace PostTrain.Core.Checkpoints;

internal sealed class CodePointComparer : IComparer<string>
{
    public static readonly CodePointComparer Instance = new();

    public int Compare(string? x, string? y)
    {
        if (ReferenceEquals(x, y)) return 0;
        if (x is null) return -1;
        if (y is null) return 1;
        var a = x.EnumerateRunes().GetEnumerator();
        var b = y.EnumerateRunes().GetEnumerator();
        while (true)
        {
            bool hasA = a.MoveNext(), hasB = b.MoveNext();
            if (!hasA || !hasB) return hasA.CompareTo(hasB);
            int c = a.Current.Value.CompareTo(b.Current.Value);
            if (c != 0) return c;
        }
    }
}
