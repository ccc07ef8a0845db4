// Runs an evaluation: for every model and task, a greedy completion per problem (accuracy) and, with Samples > 1,
// Samples completions at Temperature (pass@k, maj@k); scores each with the task's checker and appends it to
// samples.jsonl as soon as its batch is scored. Work is cut into units (a fixed chunk of problems, greedy or with all
// their samples); a unit whose samples are all in the log is skipped, and a model whose units are all done is not
// even loaded, so an interrupted eval continues where it stopped. Sampling noise depends only on (seed, task, chunk,
// position in the chunk), so a resumed eval draws what the uninterrupted one would have. Then metrics and reports.
// Data parallel (several ranks): the pending units are dealt round-robin (rank r runs units r, r + N, ...: each unit's
// batch is the one a single process generates), every rank's scored samples are gathered after each round in unit
// order, and rank 0 appends them to samples.jsonl, prints progress and writes the reports: the same files as one
// process. Every rank loads the model.
using System.Diagnostics;
using PostTrain.Core.Distributed;
using PostTrain.Core.Generation;
using PostTrain.Core.Runtime;
using PostTrain.Data.Examples;
using PostTrain.Data.Templates;
using PostTrain.Data.Tokenizers;
using PostTrain.Eval.Metrics;
using PostTrain.Eval.Reports;
using PostTrain.Eval.Tasks;
using PostTrain.Rewards;
using PostTrain.Training.Distributed;

namespace PostTrain.Eval.Runner;

public sealed class EvalRunner(EvalSettings settings, TextWriter? output = null)
{
    private readonly DataParallel _dp = new(Dist.World);
    private TextWriter? Progress => _dp.IsMain ? output : null;   // rank 0 reports

    /// <summary>Reward plugins folder for task checkers given by plugin name (null = built-ins and paths only).</summary>
    public string? RewardsDir { get; init; }

    public EvalSettings Settings => settings;

    /// <param name="metricsPath">A training run's folder or its metrics.jsonl, plotted in the report (optional).</param>
    public EvalResult Run(IReadOnlyList<EvalModel> models, IReadOnlyList<EvalTask> tasks, string outputDir,
        string? metricsPath = null, CancellationToken ct = default)
    {
        settings.Validate();
        if (models.Count == 0) throw new EvalConfigException("no model to evaluate");
        if (tasks.Count == 0) throw new EvalConfigException("no task to evaluate");
        Unique(models.Select(m => m.Label), "model label", "give models distinct labels (label=dir)");
        Unique(tasks.Select(t => t.Name), "task name", "give tasks distinct names");
        settings.CheckTemplateLabels(models.Select(m => m.Label).ToList());
        // a bad template named in chat_templates fails before any model runs (auto, the default, resolves at the model)
        foreach (var m in models.Where(m => m.Directory is not null && settings.TemplateFor(m.Label) != "auto"))
            TemplateOf(m, EvalModel.LoadTokenizer(m.Directory!));
        Directory.CreateDirectory(outputDir);
        if (!_dp.IsMain) _dp.Group.Barrier();   // rank 0 writes the settings file first; the others check theirs against it
        settings.SaveOrCheck(outputDir);
        if (_dp.IsMain) _dp.Group.Barrier();

        var registry = PostTrain.Training.RewardModeling.TrainingRewardRegistry.Create(RewardsDir);
        var loaded = tasks.Select(t => (Task: t, Problems: EvalProblem.Load(t, settings.Limit), Checker: registry.Create(t.Checker, t.CheckerOptions))).ToList();
        using (var log = new SampleLog(outputDir, write: _dp.IsMain))
        {
            _dp.Group.Barrier();   // every rank has read the log before rank 0 appends to it
            foreach (var model in models)
            {
                var pending = loaded.SelectMany(t => Units(t.Task, t.Problems).Where(u => !u.Keys(model.Label).All(log.Contains))
                    .Select(u => (t.Task, t.Checker, Unit: u))).ToList();
                if (pending.Count == 0)
                {
                    Progress?.WriteLine($"eval {model.Label}: all samples already in {log.Path}");
                    continue;
                }
                RunModel(model, pending, log, ct);
            }
            var samples = log.All.ToList();
            var result = EvalResult.Compute(models.Select(m => m.Label).ToList(), loaded.Select(t => (t.Task, t.Problems)).ToList(), samples, settings);
            if (!_dp.IsMain) return result;
            var paths = ReportWriter.Write(outputDir, result, metricsPath, settings);
            Progress?.WriteLine($"eval: report in {paths.Html}");
            return result with { Reports = paths };
        }
    }

    private void RunModel(EvalModel model, List<(EvalTask Task, IReward Checker, Unit Unit)> pending, SampleLog log, CancellationToken ct)
    {
        var device = DeviceSelector.Resolve(settings.Device);
        var (net, tokenizer, owned) = model.Load(device);
        try
        {
            net.eval();
            var template = TemplateOf(model, tokenizer);
            var sw = Stopwatch.StartNew();
            var generators = new Dictionary<string, TokenGenerator>();
            for (int round = 0; round < pending.Count; round += _dp.Size)
            {
                ct.ThrowIfCancellationRequested();
                int mine = round + _dp.Group.Rank;                   // this rank's unit of the round (none past the end)
                var fresh = mine < pending.Count ? RunUnit(model.Label, net, tokenizer, template, pending[mine], generators, log, ct) : [];
                var done = Math.Min(pending.Count, round + _dp.Size);
                log.Append(_dp.Gather(fresh));                       // in unit order, as one process appends them
                var (task, _, unit) = pending[done - 1];
                Progress?.WriteLine($"eval {model.Label} {task.Name} {unit.Mode}: problems {unit.Problems[0].Index}..{unit.Problems[^1].Index} " +
                    $"({done}/{pending.Count} batches, {sw.Elapsed.TotalSeconds:F1} s, {generators.GetValueOrDefault(task.Name)?.LastStats.TokensPerSecond ?? 0:F0} tok/s)");
            }
        }
        finally
        {
            if (owned) net.Dispose();
        }
    }

    private IChatTemplate TemplateOf(EvalModel model, ITokenizer tokenizer)
    {
        try { return ChatTemplates.Resolve(settings.TemplateFor(model.Label), tokenizer, model.Directory, $"chat_templates.{model.Label}"); }
        catch (ChatTemplateException e) { throw new EvalConfigException(e.Message); }
    }

    /// <summary>One unit's samples (those not in the log yet), generated and scored.</summary>
    private List<EvalSample> RunUnit(string label, PostTrain.Core.Model.DeepSeekForCausalLM net, ITokenizer tokenizer, IChatTemplate template,
        (EvalTask Task, IReward Checker, Unit Unit) item, Dictionary<string, TokenGenerator> generators, SampleLog log, CancellationToken ct)
    {
        var (task, checker, unit) = item;
        if (!generators.TryGetValue(task.Name, out var generator))
            generators[task.Name] = generator = new TokenGenerator(net, new GenerationOptions
            {
                MaxBatchSize = settings.BatchSize,
                Decoder = task.StopStrings is { Count: > 0 } ? new FuncTextDecoder(ids => tokenizer.DecodeGenerated(ids)) : null,
            });
        var prompts = unit.Problems.Select(p => Render(template, task, p)).ToArray();
        var batch = unit.Problems.SelectMany((p, i) => Enumerable.Repeat(prompts[i], unit.SamplesPerProblem)).ToArray();
        var sampling = new SamplingParams(
            Temperature: unit.Mode == EvalSample.Greedy ? 0 : settings.Temperature,
            TopP: unit.Mode == EvalSample.Greedy ? 1 : settings.TopP,
            MaxNewTokens: settings.MaxNewTokens,
            StopTokenIds: [tokenizer.EosId],
            StopStrings: task.StopStrings is { Count: > 0 } s ? s : null,
            Seed: unit.Seed);
        var results = generator.Generate(batch, sampling, ct);
        var fresh = new List<EvalSample>();
        for (int i = 0; i < batch.Length; i++)
        {
            var problem = unit.Problems[i / unit.SamplesPerProblem];
            int sampleIndex = i % unit.SamplesPerProblem;
            if (log.Contains((label, task.Name, unit.Mode, problem.Index, sampleIndex))) continue;
            fresh.Add(Describe(label, task, unit.Mode, problem, sampleIndex, batch[i].Length, results[i], tokenizer));
        }
        return Score(fresh, task, unit, checker, ct);
    }

    private static int[] Render(IChatTemplate template, EvalTask task, EvalProblem p)
    {
        var messages = new List<ChatMessage>();
        if (task.SystemPrompt is not null) messages.Add(ChatMessage.System(task.SystemPrompt));
        messages.Add(ChatMessage.User(p.Prompt));
        return template.RenderPrompt(messages);
    }

    /// <summary>The sample before scoring. The completion text leaves out a final end-of-sentence token; the token
    /// count includes it.</summary>
    private static EvalSample Describe(string model, EvalTask task, string mode, EvalProblem problem, int sample, int promptTokens,
        GenerationResult r, PostTrain.Data.Tokenizers.ITokenizer tokenizer)
    {
        var ids = r.TokenIds.AsSpan();
        if (r.StopTokenId is int stop && ids.Length > 0 && ids[^1] == stop) ids = ids[..^1];
        var text = tokenizer.DecodeGenerated(ids);
        return new EvalSample
        {
            Model = model, Task = task.Name, Mode = mode, Problem = problem.Index, Sample = sample, Category = problem.Category,
            Prompt = problem.Prompt, Completion = text, Correct = false, PromptTokens = promptTokens,
            CompletionTokens = r.TokenIds.Length, FinishReason = r.FinishReason,
        };
    }

    /// <summary>Scores in parallel (checkers are thread-safe). A checker exception is recorded as the sample's reason
    /// (reward null, not correct) and counted in the report, so one bad row does not stop the eval.</summary>
    private static List<EvalSample> Score(List<EvalSample> samples, EvalTask task, Unit unit, IReward checker, CancellationToken ct)
    {
        var byIndex = unit.Problems.ToDictionary(p => p.Index);
        var scored = new EvalSample[samples.Count];
        Parallel.For(0, samples.Count, new ParallelOptions { CancellationToken = ct, MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            var s = samples[i];
            var columns = byIndex[s.Problem].Columns;
            double? reward;
            string? reason;
            try
            {
                var r = checker.Score(new RewardInput(s.Prompt, s.Completion, columns), ct);
                (reward, reason) = (r.Score, r.Reason);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                (reward, reason) = (null, $"checker failed: {e.GetType().Name}: {e.Message}");
            }
            string? lang = columns.TryGetValue("language", out var l) ? l as string : null;
            scored[i] = s with
            {
                Reward = reward, Reason = reason, Correct = EvalSample.IsCorrect(reward),
                Answer = AnswerExtraction.Extract(task.Answers, s.Completion, lang ?? CodeLanguage(columns)),
            };
        });
        return [.. scored];
    }

    /// <summary>The `language` of a code row's tests spec, if any (so maj@k extracts the right fence).</summary>
    private static string? CodeLanguage(IReadOnlyDictionary<string, object?> columns)
    {
        if (!columns.TryGetValue("tests", out var t) || t is not string json) return null;
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(json);
            return doc.RootElement.TryGetProperty("language", out var l) ? l.GetString() : null;
        }
        catch (System.Text.Json.JsonException) { return null; }
    }

    /// <summary>The greedy units (chunks of BatchSize problems) then, with Samples > 1, the sampled units (chunks of
    /// BatchSize / Samples problems, at least one, each with all its samples).</summary>
    internal IEnumerable<Unit> Units(EvalTask task, IReadOnlyList<EvalProblem> problems)
    {
        foreach (var chunk in problems.Chunk(settings.BatchSize))
            yield return new Unit(task.Name, EvalSample.Greedy, chunk, 1, 0);
        if (settings.Samples <= 1) yield break;
        int per = System.Math.Max(1, settings.BatchSize / settings.Samples);
        foreach (var chunk in problems.Chunk(per))
            yield return new Unit(task.Name, EvalSample.Sampled, chunk, settings.Samples, UnitSeed(task.Name, chunk[0].Index));
    }

    /// <summary>Stable across runs and processes (FNV-1a of the task name, not string.GetHashCode).</summary>
    private long UnitSeed(string task, int firstProblem)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in task) { h ^= c; h *= 1099511628211UL; }
        h ^= (ulong)firstProblem * 0x9E3779B97F4A7C15UL;
        h ^= (ulong)settings.Seed * 0xBF58476D1CE4E5B9UL;
        return (long)(h & 0x7FFF_FFFF_FFFF_FFFFUL);
    }

    private static void Unique(IEnumerable<string> names, string what, string hint)
    {
        var dup = names.GroupBy(n => n, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new EvalConfigException($"two inputs share the {what} '{dup.Key}': {hint}");
    }

    internal sealed record Unit(string Task, string Mode, EvalProblem[] Problems, int SamplesPerProblem, long Seed)
    {
        public IEnumerable<(string, string, string, int, int)> Keys(string model) =>
            Problems.SelectMany(p => Enumerable.Range(0, SamplesPerProblem).Select(s => (model, Task, Mode, p.Index, s)));
    }
}
