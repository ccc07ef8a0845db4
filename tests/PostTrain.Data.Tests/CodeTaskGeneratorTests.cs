// The code-synthesis generator (datasets/code): seeded and deterministic, the three splits' functions disjoint (test:
// held-out families and held-out constants of the others; rl: other constants, never in train; the pre-training text
// only train functions, its wide-constant variant too), every language x category present in both splits with
// levels 1-3, hidden tests that agree with an evaluation written here by hand, and the shipped Parquet files equal to
// what the generator produces now. (That every reference solution passes its tests in the sandbox is checked in
// tests/PostTrain.Eval.Tests/CodeDatasetTests.)
using System.Text.Json;
using PostTrain.Data.Generators;
using PostTrain.Data.Readers;

namespace PostTrain.Data.Tests;

public sealed class CodeTaskGeneratorTests
{
    [Fact]
    public void Generation_is_deterministic_and_seed_dependent()
    {
        Assert.Equal(CodeTaskGenerator.Generate(60, 21, CodeSplit.Train), CodeTaskGenerator.Generate(60, 21, CodeSplit.Train));
        Assert.NotEqual(CodeTaskGenerator.Generate(60, 21, CodeSplit.Train).Select(t => t.Prompt),
            CodeTaskGenerator.Generate(60, 22, CodeSplit.Train).Select(t => t.Prompt));
    }

    [Fact]
    public void No_test_function_or_family_is_in_train_and_rl_functions_are_in_neither()
    {
        var (train, rl, test) = DatasetFiles.Code();
        Assert.Equal(4000, train.Count);
        Assert.Equal(2000, rl.Count);
        Assert.Equal(400, test.Count);
        var trainFunctions = train.Select(t => t.Function).ToHashSet();
        var rlFunctions = rl.Select(t => t.Function).ToHashSet();
        Assert.DoesNotContain(test, t => trainFunctions.Contains(t.Function) || rlFunctions.Contains(t.Function));
        Assert.DoesNotContain(rl, t => trainFunctions.Contains(t.Function));
        Assert.DoesNotContain(train, t => CodeTemplates.TestOnly.Contains(t.Family));
        Assert.DoesNotContain(rl, t => CodeTemplates.TestOnly.Contains(t.Family));
        Assert.All(train, t => Assert.Equal("", t.HeldOut));
        Assert.All(rl, t => Assert.Equal("constants", t.HeldOut));
        Assert.Equal(["constants", "family"], test.Select(t => t.HeldOut).Distinct().Order());
        Assert.Equal(train.Count + rl.Count + test.Count, train.Concat(rl).Concat(test).Select(t => t.Prompt).Distinct().Count());
        // The hand-rolled split rule: rl and test functions outside the TestOnly families have constants, and every rl
        // family also has training functions (new constants of a trained family, not a new family).
        Assert.All(test, t => Assert.True(CodeTemplates.TestOnly.Contains(t.Family) || t.Function != t.Family + "()", t.Function));
        Assert.All(rl, t => Assert.NotEqual(t.Family + "()", t.Function));
        var trainFamilies = train.Select(t => t.Family).ToHashSet();
        Assert.All(rl, t => Assert.Contains(t.Family, trainFamilies));
    }

    [Fact]
    public void Pretraining_text_holds_only_training_functions()
    {
        var (train, rl, test) = DatasetFiles.Code();
        var path = Path.Combine(Path.GetTempPath(), $"code-pretrain-{Guid.NewGuid():N}.jsonl");
        try
        {
            Assert.Equal(600, DatasetFiles.WriteCodePretrain(path, 600));
            var prompts = File.ReadLines(path).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("prompt").GetString()!).ToList();
            Assert.Equal(600, prompts.Distinct().Count());
            var heldOutPrompts = rl.Concat(test).Select(t => t.Prompt).ToHashSet();
            Assert.DoesNotContain(prompts, heldOutPrompts.Contains);
            // the functions: regenerate the same rows (seed 9) and check their splits
            var rows = CodeTaskGenerator.Generate(600, seed: 9, CodeSplit.Train, train.Select(t => t.Prompt).ToHashSet());
            Assert.Equal(prompts, rows.Select(r => r.Prompt));
            var heldOutFunctions = rl.Concat(test).Select(t => t.Function).ToHashSet();
            Assert.DoesNotContain(rows, r => heldOutFunctions.Contains(r.Function) || CodeTemplates.TestOnly.Contains(r.Family));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Wide_pretraining_text_spreads_constants_yet_holds_only_training_functions()
    {
        // The wide variant draws the widened families' constants from ranges where a function appears once or a few times, so
        // memorising functions cannot lower the loss; the split rule still keeps every rl and held-out function out.
        var (train, rl, test) = DatasetFiles.Code();
        var rows = CodeTaskGenerator.Generate(4000, seed: 9, CodeSplit.Train, train.Select(t => t.Prompt).ToHashSet(), wide: true);
        Assert.Equal(4000, rows.Select(r => r.Prompt).Distinct().Count());
        var heldOutFunctions = rl.Concat(test).Select(t => t.Function).ToHashSet();
        Assert.DoesNotContain(rows, r => heldOutFunctions.Contains(r.Function) || CodeTemplates.TestOnly.Contains(r.Family));
        Assert.All(rows, r => Assert.Equal(CodeSplit.Train,
            CodeTaskGenerator.SplitOf(CodeTemplates.All.Single(t => t.Name == r.Family), Constants(r.Function))));
        // addConst: its narrow range is 1..999; wide rows go far past it and almost never repeat a function
        var addConst = rows.Where(r => r.Family == "addConst").ToList();
        Assert.True(addConst.Count > 50, $"{addConst.Count} addConst rows");
        Assert.Contains(addConst, r => Constants(r.Function)[0] > 999);
        Assert.True(addConst.Select(r => r.Function).Distinct().Count() >= addConst.Count * 9 / 10);
        Assert.Contains($"n + {Constants(addConst[0].Function)[0]};", addConst[0].Completion);
        // families without wide constants keep their own (strings: firstChars takes 1..6 characters)
        Assert.All(rows.Where(r => r.Family == "firstChars"), r => Assert.InRange(Constants(r.Function)[0], 1, 6));
        // the narrow generator (the shipped splits) is unchanged by the option's existence
        Assert.Equal(CodeTaskGenerator.Generate(50, seed: 9, CodeSplit.Train).Select(r => r.Prompt),
            CodeTaskGenerator.Generate(50, seed: 9, CodeSplit.Train, wide: false).Select(r => r.Prompt));
    }

    [Fact]
    public void Capped_wide_text_keeps_the_rl_rows_constant_lengths()
    {
        // CapMagnitude: digit counts equally likely, values inside each count's range (a third each for cap 999)
        var rng = new SplitMix64(3);
        var draws = Enumerable.Range(0, 3000).Select(_ => CodeTaskGenerator.CapMagnitude(rng, 999)).ToList();
        Assert.All(draws, d => Assert.InRange(d, 1, 999));
        foreach (var (lo, hi) in new[] { (1, 9), (10, 99), (100, 999) })
            Assert.InRange(draws.Count(d => d >= lo && d <= hi), 900, 1100);
        Assert.All(Enumerable.Range(0, 500).Select(_ => CodeTaskGenerator.CapMagnitude(rng, 50)), d => Assert.InRange(d, 1, 50));
        Assert.Throws<ArgumentOutOfRangeException>(() => CodeTaskGenerator.Generate(10, seed: 9, CodeSplit.Train, wide: true, wideCap: 5));

        // the wide text with cap 999: every widened family's constants within +-999 (sign kept: clamp still has lo <= 0 < hi),
        // still only training functions, and the code writes the constant it was asked for
        var (train, rl, test) = DatasetFiles.Code();
        var rows = CodeTaskGenerator.Generate(4000, seed: 9, CodeSplit.Train, train.Select(t => t.Prompt).ToHashSet(), wide: true, wideCap: 999);
        var widened = CodeTemplates.All.Where(t => t.WideConstants is not null).Select(t => t.Name).ToHashSet();
        var wideRows = rows.Where(r => widened.Contains(r.Family)).ToList();
        Assert.True(wideRows.Count > 500, $"{wideRows.Count} rows of widened families");
        Assert.All(wideRows, r => Assert.All(Constants(r.Function), c => Assert.InRange(c, -999, 999)));
        Assert.All(rows.Where(r => r.Family == "clamp"), r => Assert.True(Constants(r.Function)[0] <= 0 && Constants(r.Function)[1] > 0, r.Function));
        var heldOutFunctions = rl.Concat(test).Select(t => t.Function).ToHashSet();
        Assert.DoesNotContain(rows, r => heldOutFunctions.Contains(r.Function) || CodeTemplates.TestOnly.Contains(r.Family));
        // addConst (wide 1..99,999): capped, its constants are 1, 2 or 3 digits about a third each
        var adds = rows.Where(r => r.Family == "addConst").Select(r => Constants(r.Function)[0]).ToList();
        Assert.True(adds.Count > 60, $"{adds.Count} addConst rows");
        foreach (var digits in new[] { 1, 2, 3 })
            Assert.InRange(adds.Count(c => c.ToString(System.Globalization.CultureInfo.InvariantCulture).Length == digits), adds.Count / 6, adds.Count / 2);
        var add = rows.First(r => r.Family == "addConst");
        Assert.Contains($"n + {Constants(add.Function)[0]};", add.Completion);

        // drills with the cap: numbers within +-999; without it the same drills as before the option existed
        var capped = CopyDrills.Generate(600, seed: 12, numberCap: 999);
        var numbers = capped.Where(d => d.Prompt.StartsWith("Repeat the numbers: ", StringComparison.Ordinal))
            .SelectMany(d => d.Completion.Split(", ")).Select(int.Parse).ToList();
        Assert.True(numbers.Count > 100);
        Assert.All(numbers, n => Assert.InRange(n, -999, 999));
        Assert.Contains(numbers, n => n < 0);
        Assert.Equal(CopyDrills.Generate(50, seed: 12), CopyDrills.Generate(50, seed: 12, numberCap: null));
    }

    [Fact]
    public void Copy_drills_repeat_their_prompt_verbatim()
    {
        var drills = CopyDrills.Generate(900, seed: 12);
        Assert.Equal(drills, CopyDrills.Generate(900, seed: 12));                     // deterministic
        Assert.NotEqual(drills, CopyDrills.Generate(900, seed: 13));
        int text = 0, numbers = 0, functions = 0;
        foreach (var (prompt, completion) in drills)
        {
            if (prompt.StartsWith("Copy this text exactly: ", StringComparison.Ordinal))
            {
                text++;
                Assert.Equal($"Copy this text exactly: {completion}\n", prompt);
                Assert.InRange(completion.Length, 6, 40);
            }
            else if (prompt.StartsWith("Repeat the numbers: ", StringComparison.Ordinal))
            {
                numbers++;
                Assert.Equal($"Repeat the numbers: {completion}\n", prompt);
                Assert.All(completion.Split(", "), n => Assert.InRange(int.Parse(n), -99_999, 99_999));
            }
            else
            {
                functions++;
                // "... function `name()` that returns C." -> a fenced function named name returning C
                var m = System.Text.RegularExpressions.Regex.Match(prompt, @"^Write a (JavaScript|C#) function `(?:static int )?(\w+)\(\)` that returns (-?\d+)\.\n$");
                Assert.True(m.Success, prompt);
                Assert.Contains($" {m.Groups[2].Value}()", completion);
                Assert.Contains($"    return {m.Groups[3].Value};", completion);
                Assert.StartsWith(m.Groups[1].Value == "C#" ? "```csharp\n" : "```js\n", completion);
            }
        }
        // kinds 4 : 3 : 3
        Assert.InRange(text, 300, 420);
        Assert.InRange(numbers, 210, 330);
        Assert.InRange(functions, 210, 330);
    }

    [Fact]
    public void Drills_go_between_the_same_pretraining_tasks()
    {
        var plain = Path.Combine(Path.GetTempPath(), $"code-pretrain-{Guid.NewGuid():N}.jsonl");
        var drilled = Path.Combine(Path.GetTempPath(), $"code-pretrain-{Guid.NewGuid():N}.jsonl");
        try
        {
            Assert.Equal(300, DatasetFiles.WriteCodePretrain(plain, 300, wide: true));
            Assert.Equal(400, DatasetFiles.WriteCodePretrain(drilled, 300, wide: true, drills: 0.25));   // 300 / (1 - 0.25)
            var tasks = File.ReadAllLines(plain);
            var rows = File.ReadAllLines(drilled);
            var drillPrompts = CopyDrills.Generate(100, seed: 12).Select(d => d.Prompt).ToHashSet();
            bool IsDrill(string line) => drillPrompts.Contains(JsonDocument.Parse(line).RootElement.GetProperty("prompt").GetString()!);
            Assert.Equal(tasks, rows.Where(l => !IsDrill(l)));                              // the same tasks, in order
            Assert.Equal(100, rows.Count(IsDrill));
            // spread evenly: every window of 40 rows holds 10 drills, give or take one
            for (int at = 0; at + 40 <= rows.Length; at += 40) Assert.InRange(rows.Skip(at).Take(40).Count(IsDrill), 9, 11);
            Assert.Throws<ArgumentOutOfRangeException>(() => DatasetFiles.WriteCodePretrain(drilled, 10, drills: 0.95));
        }
        finally
        {
            File.Delete(plain);
            File.Delete(drilled);
        }
    }

    private static int[] Constants(string function)
    {
        var inside = function[(function.IndexOf('(') + 1)..^1];
        return inside.Length == 0 ? [] : inside.Split(',').Select(int.Parse).ToArray();
    }

    [Fact]
    public void Every_language_and_category_is_in_both_splits()
    {
        var (train, _, test) = DatasetFiles.Code();
        string[] expected = [.. from l in new[] { "csharp", "javascript" } from c in new[] { "arithmetic", "conditional", "list", "string" } select $"{l}/{c}"];
        Assert.Equal(expected, train.Select(t => t.Category).Distinct().Order());
        Assert.Equal(expected, test.Select(t => t.Category).Distinct().Order());
        Assert.Equal([1, 2, 3], train.Select(t => t.Level).Distinct().Order());
        Assert.Equal(train.Count / 2, train.Count(t => t.Language == "csharp"));
        Assert.Equal(36, CodeTemplates.All.Select(t => t.Name).Distinct().Count());
        Assert.All(CodeTemplates.TestOnly, f => Assert.Contains(CodeTemplates.All, t => t.Name == f));
    }

    [Fact]
    public void Hidden_tests_agree_with_a_hand_evaluation()
    {
        // clamp and countLetter computed here independently of the families' evaluators.
        var tasks = CodeTaskGenerator.Generate(3000, 5, CodeSplit.Train).Where(t => t.Family is "clamp" or "countLetter").ToList();
        Assert.Contains(tasks, t => t.Family == "clamp");
        Assert.Contains(tasks, t => t.Family == "countLetter");
        foreach (var task in tasks)
        {
            using var doc = JsonDocument.Parse(task.Tests);
            var root = doc.RootElement;
            Assert.Equal(task.Language, root.GetProperty("language").GetString());
            var cases = root.GetProperty("cases").EnumerateArray().ToList();
            Assert.Equal(CodeTaskGenerator.HiddenCases, cases.Count);
            var inner = task.Function[(task.Function.IndexOf('(') + 1)..^1];
            foreach (var c in cases)
            {
                var arg = c.GetProperty("args")[0];
                var expected = c.GetProperty("expected");
                if (task.Family == "clamp")
                {
                    var lohi = inner.Split(',').Select(int.Parse).ToArray();
                    int n = arg.GetInt32();
                    Assert.Equal(n < lohi[0] ? lohi[0] : n > lohi[1] ? lohi[1] : n, expected.GetInt32());
                }
                else
                {
                    char letter = CodeTemplates.Letters[int.Parse(inner)];
                    int count = 0;
                    foreach (var ch in arg.GetString()!) if (ch == letter) count++;
                    Assert.Equal(count, expected.GetInt32());
                    Assert.Contains($"'{letter}'", task.Prompt);
                }
            }
            // the examples in the prompt are not among the hidden cases
            var firstArg = cases[0].GetProperty("args").GetRawText()[1..^1];
            Assert.DoesNotContain($"({firstArg}) returns", task.Prompt.Replace(", ", ","));
        }
    }

    [Fact]
    public void Shipped_parquet_files_match_the_generator()
    {
        var (train, rl, test) = DatasetFiles.Code();
        foreach (var (split, tasks) in new[] { ("train", train), ("rl", rl), ("test", test) })
        {
            var rows = DatasetReader.Read(Path.Combine(GeneratorTests.RepoRoot(), "datasets", "code", $"{split}.parquet")).ToList();
            Assert.Equal(tasks.Select(t => (t.Prompt, t.Completion, t.Tests, t.Category, t.Function, t.HeldOut)),
                rows.Select(r => ((string)r["prompt"]!, (string)r["completion"]!, (string)r["tests"]!, (string)r["category"]!,
                    (string)r["function"]!, (string)r["held_out"]!)));
        }
    }
}
