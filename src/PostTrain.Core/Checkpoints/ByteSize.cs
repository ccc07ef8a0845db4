// Parses shard sizes the way transformers' convert_file_size_to_int does: "5GB" = 5e9 bytes,
// "5GiB" = 5 * 2^30, likewise MB/MiB and KB/KiB, a bare integer = bytes; for the decimal units a
// lowercase final 'b' ("5Gb") means bits, so the byte count is divided by 8.
using System.Globalization;

namespace PostTrain.Core.Checkpoints;

public static class ByteSize
{
    public static long Parse(string size)
    {
        string s = size.Trim();
        (string Suffix, long Factor)[] units =
        [
            ("GIB", 1L << 30), ("MIB", 1L << 20), ("KIB", 1L << 10),
            ("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1_000),
        ];
        foreach (var (suffix, factor) in units)
        {
            if (!s.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)) continue;
            long number = ParseNumber(s[..^suffix.Length], size);
            long bytes = checked(number * factor);
            bool bits = !suffix.Contains('I') && s.EndsWith('b');
            return bits ? bytes / 8 : bytes;
        }
        return ParseNumber(s, size);
    }

    private static long ParseNumber(string digits, string original) =>
        long.TryParse(digits.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out long n) && n > 0
            ? n
            : throw new FormatException($"'{original}' is not a size like 5GB, 500MB, 2GiB or a positive byte count");
}
