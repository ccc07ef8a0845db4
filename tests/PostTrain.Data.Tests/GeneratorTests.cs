// Dataset generators: deterministic, answers correct (checked by re-evaluating the written equations), and
// the Parquet files shipped in datasets/ equal what the generators produce now.
using System.Text.RegularExpressions;
using PostTrain.Data.Examples;
using PostTrain.Data.Generators;
using PostTrain.Data.Readers;

namespace PostTrain.Data.Tests;

public sealed partial class GeneratorTests
{
    [Fact]
    public void Generators_are_deterministic_and_seed_dependent()
    {
        Assert.Equal(ArithmeticGenerator.Generate(50, 9), ArithmeticGenerator.Generate(50, 9));
        Assert.NotEqual(ArithmeticGenerator.Generate(50, 9), ArithmeticGenerator.Generate(50, 10));
        Assert.Equal(CountdownGenerator.Generate(50, 9).Select(p => p.Prompt + p.Answer), CountdownGenerator.Generate(50, 9).Select(p => p.Prompt + p.Answer));
        Assert.Equal(PreferenceGenerator.Generate(20, 9), PreferenceGenerator.Generate(20, 9));
    }

    [Fact]
    public void Arithmetic_solutions_are_correct()
    {
        var (train, test) = DatasetFiles.Arithmetic();
        Assert.Equal(2000, train.Count);
        Assert.Equal(200, test.Count);
        Assert.Empty(test.Select(p => p.Prompt).Intersect(train.Select(p => p.Prompt)));
        Assert.Equal(ArithmeticGenerator.Categories.Order(), train.Select(p => p.Category).Distinct().Order());
        foreach (var p in train.Concat(test))
        {
            var lines = p.Completion.Split('\n');
            Assert.Equal(p.Category == "two-step" ? 3 : 2, lines.Length);
            foreach (var line in lines[..^1]) CheckEquation(line);
            Assert.EndsWith($"= {p.Answer}", lines[^2]);
            Assert.Equal(p.Answer.ToString(), Boxed(lines[^1]));
            // every number in the first equation comes from the prompt
            foreach (Match m in Number().Matches(lines[0].Split('=')[0])) Assert.Contains(m.Value, p.Prompt);
            Assert.InRange(p.Answer, 0, 200);
        }
    }

    [Fact]
    public void Countdown_answers_hit_the_target_using_each_number_once()
    {
        var (train, test) = DatasetFiles.Countdown();
        Assert.Equal(2000, train.Count);
        Assert.Equal(200, test.Count);
        foreach (var p in train.Concat(test))
        {
            var literals = new List<int>();
            var value = ArithmeticExpression.Evaluate(p.Answer, literals);
            Assert.Equal((p.Target, 1L), value);
            Assert.Equal(p.Numbers.Order(), literals.Order());
            Assert.InRange(p.Numbers.Length, 3, 4);
            Assert.DoesNotContain(p.Target, p.Numbers);
            Assert.Contains($"[{string.Join(", ", p.Numbers)}]", p.Prompt);
            // the worked completion: one correct step per number after the first, the last one reaching the target,
            // then the answer expression in tags
            var lines = p.Completion.Split('\n');
            Assert.Equal(p.Numbers.Length, lines.Length);
            foreach (var line in lines[..^1]) CheckEquation(line);
            Assert.EndsWith($"= {p.Target}", lines[^2]);
            Assert.Equal($"<answer>{p.Answer}</answer>", lines[^1]);
        }
    }

    [Fact]
    public void Expression_evaluator_is_exact()
    {
        var literals = new List<int>();
        Assert.Equal((7L, 2L), ArithmeticExpression.Evaluate("(3 + 4) / 2", literals));
        Assert.Equal([3, 4, 2], literals);
        Assert.Equal((14L, 1L), ArithmeticExpression.Evaluate("2 + 3 * 4", []));
        Assert.Equal((-1L, 1L), ArithmeticExpression.Evaluate("1 - 2", []));
        Assert.Null(ArithmeticExpression.Evaluate("1 / (2 - 2)", []));
        Assert.Null(ArithmeticExpression.Evaluate("2 +", []));
        Assert.Null(ArithmeticExpression.Evaluate("(2", []));
    }

    [Fact]
    public void Preference_pairs_prefer_worked_boxed_answers_over_sloppy_ones()
    {
        var (train, test) = DatasetFiles.Preferences();
        Assert.Equal(500, train.Count);
        Assert.Equal(50, test.Count);
        Assert.Empty(test.Select(p => p.Prompt).Intersect(train.Select(p => p.Prompt)));
        // every flaw in equal shares, in both splits
        Assert.All(PreferenceGenerator.Flaws, f => Assert.Equal(100, train.Count(p => p.Flaw == f)));
        Assert.All(PreferenceGenerator.Flaws, f => Assert.Equal(10, test.Count(p => p.Flaw == f)));
        foreach (var p in train.Concat(test))
        {
            // chosen: the equation lines, each correct, then exactly one boxed right answer
            var chosen = p.Chosen.Split('\n');
            foreach (var line in chosen[..^1]) CheckEquation(line);
            Assert.Equal($"The answer is \\boxed{{{p.Answer}}}.", chosen[^1]);
            // rejected: never boxed, never the chosen text, and flawed the way its label says
            Assert.DoesNotContain("\\boxed", p.Rejected);
            var rejected = p.Rejected.Split('\n');
            switch (p.Flaw)
            {
                case "unboxed":   // the same steps; the answer stated without a box
                    Assert.Equal(chosen[..^1], rejected[..^1]);
                    Assert.Equal($"The answer is {p.Answer}.", rejected[^1]);
                    break;
                case "unfinished":   // stops at the first equation's '=' with no result and no answer line
                    Assert.Single(rejected);
                    Assert.Equal(chosen[0][..(chosen[0].IndexOf('=') + 1)], p.Rejected);
                    break;
                case "bare":   // the right number, no work
                    Assert.Equal(p.Answer.ToString(), p.Rejected);
                    break;
                case "rambling":   // the steps buried in filler, a hedged unboxed answer
                    Assert.Equal(chosen[..^1], rejected[1..^1]);
                    Assert.EndsWith($"I think it is {p.Answer} or so.", rejected[^1]);
                    Assert.True(p.Rejected.Length > p.Chosen.Length);
                    break;
                case "sloppy":   // one line, no spaces in the equations, "so N" instead of a sentence
                    Assert.Single(rejected);
                    Assert.Equal(string.Join(' ', chosen[..^1].Select(l => l.Replace(" ", ""))) + $" so {p.Answer}", p.Rejected);
                    break;
                default:
                    Assert.Fail($"unknown flaw '{p.Flaw}'");
                    break;
            }
        }
    }

    [Fact]
    public void Hard_preference_rejected_differs_only_in_a_wrong_final_result()
    {
        var (train, test) = DatasetFiles.Preferences(PreferenceKind.WrongResult);
        Assert.Equal(500, train.Count);
        Assert.Equal(50, test.Count);
        // the same problems as the shipped form pairs
        Assert.Equal(DatasetFiles.Preferences().Train.Select(p => p.Prompt), train.Select(p => p.Prompt));
        foreach (var p in train.Concat(test))
        {
            Assert.Equal("wrong_result", p.Flaw);
            Assert.Equal(p.Answer.ToString(), Boxed(p.Chosen));
            var wrong = int.Parse(Boxed(p.Rejected));
            Assert.Contains(wrong - p.Answer, new[] { -10, -2, -1, 1, 2, 10 });
            var chosen = p.Chosen.Split('\n');
            var rejected = p.Rejected.Split('\n');
            Assert.Equal(chosen[..^2], rejected[..^2]);
            Assert.EndsWith($"= {wrong}", rejected[^2]);
        }
    }

    [Fact]
    public void Shipped_parquet_files_match_the_generators()
    {
        var root = RepoRoot();
        var (at, ae) = DatasetFiles.Arithmetic();
        var (ct, ce) = DatasetFiles.Countdown();
        var (pt, pe) = DatasetFiles.Preferences();
        var (ht, he) = DatasetFiles.Preferences(PreferenceKind.WrongResult);
        var parser = new ExampleParser();

        foreach (var (split, problems) in new[] { ("train", at), ("test", ae) })
        {
            var path = Path.Combine(root, "datasets", "arithmetic", $"{split}.parquet");
            var rows = DatasetReader.Read(path).ToList();
            Assert.Equal(problems.Select(p => (p.Prompt, p.Completion, (object)p.Answer, p.Category)),
                rows.Select(r => ((string)r["prompt"]!, (string)r["completion"]!, r["answer"]!, (string)r["category"]!)));
            Assert.True(new FileInfo(path).Length < 1 << 20);
        }
        foreach (var (split, problems) in new[] { ("train", ct), ("test", ce) })
        {
            var rows = DatasetReader.Read(Path.Combine(root, "datasets", "countdown", $"{split}.parquet")).ToList();
            Assert.Equal(problems.Select(p => $"{p.Prompt}|{string.Join(",", p.Numbers)}|{p.Target}|{p.Answer}"),
                rows.Select(r => $"{r["prompt"]}|{string.Join(",", (IReadOnlyList<object?>)r["numbers"]!)}|{r["target"]}|{r["answer"]}"));
            Assert.Equal(problems.Select(p => p.Completion), rows.Select(r => (string)r["completion"]!));
        }
        foreach (var (dir, split, pairs) in new[] { ("preferences", "train", pt), ("preferences", "test", pe), ("preferences-hard", "train", ht), ("preferences-hard", "test", he) })
        {
            var examples = DatasetReader.Read(Path.Combine(root, "datasets", dir, $"{split}.parquet")).Select(parser.Preference).ToList();
            Assert.Equal(pairs.Select(p => (p.Prompt, p.Chosen, p.Rejected)),
                examples.Select(e => (e.Prompt[0].Content, e.Chosen[0].Content, e.Rejected[0].Content)));
        }
    }

    private static void CheckEquation(string line)
    {
        var m = Equation().Match(line);
        Assert.True(m.Success, line);
        int a = int.Parse(m.Groups[1].Value), b = int.Parse(m.Groups[3].Value), c = int.Parse(m.Groups[4].Value);
        if (m.Groups[2].Value == "/") Assert.Equal(a, b * c);   // exact division
        else Assert.Equal(m.Groups[2].Value switch { "+" => a + b, "-" => a - b, _ => a * b }, c);
    }

    private static string Boxed(string text) => BoxedRegex().Match(text).Groups[1].Value;

    internal static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "PostTrain.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("PostTrain.sln not found above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex(@"^(\d+) ([+\-*/]) (\d+) = (\d+)$")]
    private static partial Regex Equation();

    [GeneratedRegex(@"\\boxed\{(-?\d+)\}")]
    private static partial Regex BoxedRegex();

    [GeneratedRegex(@"\d+")]
    private static partial Regex Number();
}
