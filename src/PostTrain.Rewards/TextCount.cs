// Small string counting helpers shared by the built-in rewards.
namespace PostTrain.Rewards;

public static class TextCount
{
    /// <summary>Non-overlapping occurrences of <paramref name="needle"/>, counted left to right (Python's str.count).</summary>
    public static int Occurrences(string text, string needle)
    {
        if (needle.Length == 0) throw new ArgumentException("empty needle", nameof(needle));
        var count = 0;
        for (var i = text.IndexOf(needle, StringComparison.Ordinal); i >= 0; i = text.IndexOf(needle, i + needle.Length, StringComparison.Ordinal))
            count++;
        return count;
    }
}
