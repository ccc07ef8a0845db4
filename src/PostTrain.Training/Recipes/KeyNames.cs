// Key naming and "did you mean" for recipe configs: snake_case from C# names, and the closest valid key
// by Damerau-Levenshtein distance (optimal string alignment: insert, delete, substitute, swap neighbours).
using System.Reflection;
using System.Text;

namespace PostTrain.Training.Recipes;

public static class KeyNames
{
    /// <summary>"MaxSeqLen" -> "max_seq_len", "LRScale" -> "lr_scale", "Beta2" -> "beta2".</summary>
    public static string SnakeCase(string name)
    {
        var sb = new StringBuilder(name.Length + 4);
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            if (char.IsUpper(c))
            {
                bool prevLowerOrDigit = i > 0 && (char.IsLower(name[i - 1]) || char.IsDigit(name[i - 1]));
                bool acronymEnd = i > 0 && char.IsUpper(name[i - 1]) && i + 1 < name.Length && char.IsLower(name[i + 1]);
                if (prevLowerOrDigit || acronymEnd) sb.Append('_');
                sb.Append(char.ToLowerInvariant(c));
            }
            else sb.Append(c);
        }
        return sb.ToString();
    }

    /// <summary>The YAML key of a property or enum field: its [RecipeKey] or its snake_case name.</summary>
    public static string Of(MemberInfo member) =>
        member.GetCustomAttribute<RecipeKeyAttribute>()?.Key ?? SnakeCase(member.Name);

    /// <summary>Optimal-string-alignment distance (Damerau-Levenshtein without repeated edits of a substring).</summary>
    public static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                int best = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                    best = Math.Min(best, d[i - 2, j - 2] + 1);
                d[i, j] = best;
            }
        }
        return d[a.Length, b.Length];
    }

    /// <summary>The candidate closest to <paramref name="key"/>, if it is close enough to be a likely typo
    /// (distance at most max(2, len/3)); ties go to the first candidate.</summary>
    public static string? Closest(string key, IEnumerable<string> candidates)
    {
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (var c in candidates)
        {
            int dist = Distance(key.ToLowerInvariant(), c.ToLowerInvariant());
            if (dist < bestDistance) { best = c; bestDistance = dist; }
        }
        return best is not null && bestDistance <= Math.Max(2, key.Length / 3) ? best : null;
    }
}
