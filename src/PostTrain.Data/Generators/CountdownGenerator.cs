// Countdown puzzles: 3-4 numbers and a target reachable with + - * / using each number exactly once.
// The target is built by combining the shuffled numbers left to right with random operations (division
// only when exact, every intermediate a positive integer); the expression doing so is the stored answer, and the
// worked completion writes its steps one per line ("21 - 8 = 13") before the tagged answer, for SFT.
namespace PostTrain.Data.Generators;

public sealed record CountdownProblem(string Prompt, int[] Numbers, int Target, string Answer, string Completion);

/// <summary>How many numbers a puzzle has (inclusive range) and how large they are (1..MaxNumber).</summary>
public sealed record CountdownShape(int MinNumbers = 3, int MaxNumbers = 4, int MaxNumber = 25)
{
    public void Validate()
    {
        if (MinNumbers < 2 || MaxNumbers < MinNumbers || MaxNumbers > 6 || MaxNumber < 2 || MaxNumber > 100)
            throw new ArgumentException($"CountdownShape: need 2 <= MinNumbers <= MaxNumbers <= 6 and 2 <= MaxNumber <= 100 (got {this})");
    }
}

public static class CountdownGenerator
{
    public static List<CountdownProblem> Generate(int count, ulong seed, IReadOnlySet<string>? excludePrompts = null, CountdownShape? shape = null)
    {
        shape ??= new CountdownShape();
        shape.Validate();
        var rng = new SplitMix64(seed);
        var seen = new HashSet<string>(excludePrompts ?? new HashSet<string>());
        var problems = new List<CountdownProblem>(count);
        while (problems.Count < count)
        {
            var p = One(rng, shape);
            if (p is not null && seen.Add(p.Prompt)) problems.Add(p);
        }
        return problems;
    }

    /// <summary>One puzzle, or null when the random attempt gave a trivial or out-of-range target.</summary>
    public static CountdownProblem? One(SplitMix64 rng, CountdownShape? shape = null)
    {
        shape ??= new CountdownShape();
        var numbers = Enumerable.Range(0, rng.Next(shape.MinNumbers, shape.MaxNumbers)).Select(_ => rng.Next(1, shape.MaxNumber)).ToArray();
        var order = numbers.OrderBy(_ => rng.NextUInt64()).ToArray();
        long value = order[0];
        var expression = order[0].ToString();
        var composite = false;
        var steps = new List<string>();
        foreach (var n in order.Skip(1))
        {
            var op = "+-*/"[rng.Next(0, 3)];
            var numberFirst = rng.Next(0, 1) == 0;
            var (left, right) = numberFirst ? ((long)n, value) : (value, n);
            long result;
            switch (op)
            {
                case '+': result = left + right; break;
                case '-': result = left - right; break;
                case '*': result = left * right; break;
                default:
                    if (right == 0 || left % right != 0) return null;
                    result = left / right;
                    break;
            }
            if (result <= 0 || result > 1000) return null;
            steps.Add($"{left} {op} {right} = {result}");
            var acc = composite ? $"({expression})" : expression;
            expression = numberFirst ? $"{n} {op} {acc}" : $"{acc} {op} {n}";
            composite = true;
            value = result;
        }
        if (value > 100 || numbers.Contains((int)value)) return null;
        var target = (int)value;
        var prompt = $"Using the numbers [{string.Join(", ", numbers)}], create an equation that equals {target}. " +
            "You can use +, -, *, / and each number exactly once. Put the final equation in <answer> </answer> tags.";
        var completion = string.Join("\n", steps) + $"\n<answer>{expression}</answer>";
        return new CountdownProblem(prompt, numbers, target, expression, completion);
    }
}
