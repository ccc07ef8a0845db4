// Arithmetic word problems small enough for a ~5M-parameter model: one or two steps on small numbers
// (add, sub, mul, two-step), each solved as equation lines and a final "The answer is \boxed{N}."
namespace PostTrain.Data.Generators;

public sealed record ArithmeticProblem(string Prompt, string Completion, int Answer, string Category);

public static class ArithmeticGenerator
{
    public static readonly string[] Categories = ["add", "sub", "mul", "two-step"];
    private static readonly (string Name, string Pronoun)[] People =
        [("Tom", "He"), ("Anna", "She"), ("Ben", "He"), ("Lucy", "She"), ("Sam", "He"), ("Mia", "She"), ("Leo", "He"), ("Zoe", "She")];
    private static readonly string[] Items = ["apples", "pens", "books", "marbles", "stickers", "cookies", "cards", "coins"];

    /// <summary><paramref name="count"/> distinct problems (by prompt), deterministic for a seed, categories in turn.</summary>
    public static List<ArithmeticProblem> Generate(int count, ulong seed, IReadOnlySet<string>? excludePrompts = null)
    {
        var rng = new SplitMix64(seed);
        var seen = new HashSet<string>(excludePrompts ?? new HashSet<string>());
        var problems = new List<ArithmeticProblem>(count);
        while (problems.Count < count)
        {
            var p = One(rng, Categories[problems.Count % Categories.Length]);
            if (seen.Add(p.Prompt)) problems.Add(p);
        }
        return problems;
    }

    public static ArithmeticProblem One(SplitMix64 rng, string category)
    {
        var (name, pronoun) = rng.Pick(People);
        var item = rng.Pick(Items);
        switch (category)
        {
            case "add":
            {
                int a = rng.Next(1, 50), b = rng.Next(1, 50), c = a + b;
                return new($"{name} has {a} {item}. {pronoun} gets {b} more. How many {item} does {name} have now?",
                    $"{a} + {b} = {c}\n{Final(c)}", c, category);
            }
            case "sub":
            {
                int a = rng.Next(10, 99), b = rng.Next(1, a), c = a - b;
                return new($"{name} has {a} {item}. {pronoun} gives away {b}. How many {item} are left?",
                    $"{a} - {b} = {c}\n{Final(c)}", c, category);
            }
            case "mul":
            {
                int a = rng.Next(2, 9), b = rng.Next(2, 12), c = a * b;
                return new($"{name} has {a} boxes with {b} {item} in each box. How many {item} are there in total?",
                    $"{a} * {b} = {c}\n{Final(c)}", c, category);
            }
            case "two-step":
            {
                int a = rng.Next(2, 9), b = rng.Next(2, 9), p = a * b;
                if (rng.Next(0, 1) == 0)
                {
                    var d = rng.Next(1, p);
                    return new($"{name} has {a} bags with {b} {item} in each bag. {pronoun} gives away {d}. How many {item} are left?",
                        $"{a} * {b} = {p}\n{p} - {d} = {p - d}\n{Final(p - d)}", p - d, category);
                }
                var e = rng.Next(1, 30);
                return new($"{name} has {a} bags with {b} {item} in each bag. {pronoun} finds {e} more. How many {item} does {name} have now?",
                    $"{a} * {b} = {p}\n{p} + {e} = {p + e}\n{Final(p + e)}", p + e, category);
            }
            default:
                throw new ArgumentException($"unknown arithmetic category '{category}' (expected {string.Join(", ", Categories)})");
        }
    }

    public static string Final(int answer) => $"The answer is \\boxed{{{answer}}}.";
}
