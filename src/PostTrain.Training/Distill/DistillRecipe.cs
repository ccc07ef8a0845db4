// distill: R1-style distillation data. For each problem of a dataset, a teacher (a local PostTrain model or an
// OpenAI-compatible endpoint) writes k samples with a reasoning template; the task's rewards verify them (rejection
// sampling: a sample passes when its weighted reward >= min_reward); filters drop truncated, too short, answerless,
// repetitive and mixed-language samples, duplicates, and optionally problems outside a pass-rate band; problems that
// share an n-gram with an eval set are dropped before sampling. The kept samples become an SFT dataset (Parquet shards
// with a `messages` column plus provenance) that `recipe: sft` trains on directly (data.path = <output_dir>/data).
// Work goes shard by shard (problems_per_shard problems: one teacher call, one shard file, one state update), so an
// interrupted run resumes at the first unfinished shard and, with seeded sampling, ends with the same dataset.
// Progress, per-shard metrics (metrics.jsonl + TensorBoard) and final statistics (table + stats.json).
// Data parallel (several ranks): each shard's problems are split over the ranks (a problem's k samples on one rank,
// each drawn with its row of the shard's call), sampled and scored there, and gathered in problem order; rank 0 then
// writes the shard, the state, metrics and stats exactly as one process would (so resume works as before).
// Simplification: shards run one after another (a slow request holds up its shard's end).
using System.Diagnostics;
using System.Text.Json;
using PostTrain.Core.Distributed;
using PostTrain.Rewards;
using PostTrain.Training.Distributed;
using PostTrain.Training.Infra;
using PostTrain.Training.Recipes;

namespace PostTrain.Training.Distill;

public sealed class DistillRecipe(DistillConfig cfg) : IRecipe
{
    private ReasoningTemplate _template = null!;
    private SampleFilter _filter = null!;
    private RewardRunner _rewards = null!;
    private DistillProblems _problems = null!;
    private ITeacher? _teacher;
    private MetricsLogger? _metrics;
    private DistillState _state = new();
    private readonly DataParallel _dp = new(Dist.World);
    private TextWriter _log = TextWriter.Null;   // rank 0's log

    /// <summary>Raised after each shard and the state file are written (tests stop a run here to check resume).</summary>
    public event Action<ShardInfo>? ShardWritten;
    /// <summary>Problems the teacher sampled in this run (not counting those a resumed run found done).</summary>
    public int ProblemsGenerated { get; private set; }
    public DistillStats? Stats { get; private set; }

    public async Task<int> RunAsync(RecipeContext ctx, CancellationToken ct)
    {
        try
        {
            Setup(ctx);
            await Generate(ctx, ct);
            return 0;
        }
        finally
        {
            _metrics?.Dispose();
            _teacher?.Dispose();
        }
    }

    private void Validate()
    {
        void Check(bool ok, string key, object? value, string rule) { if (!ok) throw new RecipeConfigException($"{key}: must be {rule}, got {value}"); }
        var s = cfg.Sampling;
        var f = cfg.Filters;
        Check(s.SamplesPerProblem >= 1, "sampling.samples_per_problem", s.SamplesPerProblem, ">= 1");
        Check(s.MaxTokens >= 1, "sampling.max_tokens", s.MaxTokens, ">= 1");
        Check(s.Temperature >= 0, "sampling.temperature", s.Temperature, ">= 0 (0 = greedy)");
        Check(s.TopP > 0 && s.TopP <= 1, "sampling.top_p", s.TopP, "in (0, 1]");
        Check(cfg.Rewards.Count >= 1, "rewards", cfg.Rewards.Count, "a list of at least one reward (they verify the samples)");
        Check(f.MinCompletionTokens >= 0, "filters.min_completion_tokens", f.MinCompletionTokens, ">= 0");
        Check(f.MaxCompletionTokens is null or >= 1, "filters.max_completion_tokens", f.MaxCompletionTokens, ">= 1 or null");
        Check(f.MaxRepetition is null or (>= 0 and <= 1), "filters.max_repetition", f.MaxRepetition, "in [0, 1] or null");
        Check(f.RepetitionNgram >= 1, "filters.repetition_ngram", f.RepetitionNgram, ">= 1");
        Check(f.MinLanguageShare is >= 0 and <= 1, "filters.min_language_share", f.MinLanguageShare, "in [0, 1]");
        Check(f.MaxKeptPerProblem >= 1, "filters.max_kept_per_problem", f.MaxKeptPerProblem, ">= 1");
        Check(f.MinPassRate <= f.MaxPassRate, "filters.min_pass_rate", f.MinPassRate, $"<= filters.max_pass_rate ({f.MaxPassRate})");
        Check(cfg.Output.ProblemsPerShard >= 1, "output.problems_per_shard", cfg.Output.ProblemsPerShard, ">= 1");
    }

    private void Setup(RecipeContext ctx)
    {
        Validate();
        _log = _dp.Log(ctx.Log);
        _template = ReasoningTemplate.From(cfg.Sampling);
        _filter = new SampleFilter(cfg.Filters, _template);
        var registry = RewardModeling.TrainingRewardRegistry.Create(cfg.RewardsDir);
        var specs = cfg.Rewards.Select(r => r.ToSpec());
        _rewards = new RewardRunner(registry.CreateAll(specs), new RewardRunnerOptions { Timeout = TimeSpan.FromSeconds(cfg.RewardTimeoutSeconds) });

        NgramIndex? evalSets = null;
        if (cfg.Decontamination is { Paths.Count: > 0 } d)
        {
            evalSets = NgramIndex.FromEvalSets(d);
            _log.WriteLine($"decontamination: {evalSets.Texts} eval texts ({string.Join(", ", d.Paths)}), {d.Ngram}-grams");
        }
        _problems = new DistillProblems(cfg.Data, evalSets);
        _log.WriteLine($"problems: {_problems.Items.Count} of {_problems.Rows} rows in {cfg.Data.Path}" +
            (evalSets is null ? "" : $" ({_problems.Decontaminated} dropped: they share a {evalSets.N}-gram with an eval set)"));

        var settings = Settings();
        var previous = cfg.Output.Resume ? DistillOutput.ReadState(cfg.OutputDir) : null;
        if (!cfg.Output.Resume && _dp.IsMain) DistillOutput.Clear(cfg.OutputDir);
        if (previous is not null)
        {
            foreach (var (key, value) in settings)
                if (previous.Settings.GetValueOrDefault(key) != value)
                    throw new RecipeConfigException($"{Path.Combine(cfg.OutputDir, DistillOutput.StateFile)}: this run's '{key}' differs from the one that " +
                        $"made the shards there (was {previous.Settings.GetValueOrDefault(key) ?? "absent"}, now {value}); use another output_dir, or output.resume=false to start over");
            _state = previous;
            _log.WriteLine($"resuming: {previous.Shards.Count} shards done ({previous.NextProblem} problems, {previous.Counts.Kept} samples kept)");
        }
        else
        {
            if (_dp.IsMain) DistillOutput.Clear(cfg.OutputDir);   // shards of an unfinished first shard (no state yet) are stale
            _state = new DistillState { Settings = settings };
        }
        if (_dp.IsMain) _metrics = new MetricsLogger(cfg.OutputDir, cfg.Logging.Tensorboard, resumedFromStep: previous is null ? null : previous.NextProblem);
    }

    /// <summary>What decides the output, as JSON per key; a resumed run must match (max_problems, concurrency, timeouts,
    /// batch size and device may change).</summary>
    private Dictionary<string, string> Settings()
    {
        var json = new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
        string J(object? o) => JsonSerializer.Serialize(o, json);
        var t = cfg.Teacher;
        return new Dictionary<string, string>
        {
            ["seed"] = J(cfg.Seed),
            ["teacher"] = J(new { t.Kind, t.Path, t.Tokenizer, t.Dtype, t.ChatTemplate, t.BaseUrl, t.Model, t.SendSeed }),
            ["data"] = J(new { cfg.Data.Path, cfg.Data.PromptColumn, cfg.Data.IdColumn }),
            ["sampling"] = J(cfg.Sampling),
            ["rewards"] = J(cfg.Rewards),
            ["filters"] = J(cfg.Filters),
            ["decontamination"] = J(cfg.Decontamination),
            ["output"] = J(new { cfg.Output.ProblemsPerShard, cfg.Output.IncludeSystemPrompt }),
        };
    }

    private async Task Generate(RecipeContext ctx, CancellationToken ct)
    {
        int total = _problems.Items.Count, per = cfg.Output.ProblemsPerShard;
        var clock = Stopwatch.StartNew();
        double before = _state.Seconds;
        if (_state.NextProblem < total)
        {
            _teacher = cfg.Teacher.Kind == TeacherKind.Local
                ? new LocalTeacher(cfg.Teacher, cfg.Seed, _log)
                : new OpenAiTeacher(cfg.Teacher, cfg.Seed);
            _log.WriteLine($"teacher: {_teacher.Name}");
            using var progress = _dp.Progress(() => ctx.CreateProgress(cfg.Logging, total, _state.NextProblem, new ProgressLabels("problems", "pass_rate", "problems")));
            while (_state.NextProblem < total)
            {
                ct.ThrowIfCancellationRequested();
                int first = _state.NextProblem, end = Math.Min(total, first + per), index = first / per;
                var shard = await RunShard(index, first, end, ct);
                ProblemsGenerated += end - first;
                _state = _state with { Shards = [.. _state.Shards, shard.Info], Seconds = before + clock.Elapsed.TotalSeconds };
                if (_dp.IsMain) DistillOutput.WriteState(cfg.OutputDir, _state);
                long retries = (long)_dp.Sum(_teacher.Retries)[0];
                _metrics?.Log(end, shard.Metrics(_state.Counts, retries));
                progress.Update(end, shard.PassRate, shard.CompletionTokens);
                progress.Message($"shard {index}: problems {first}-{end - 1}, kept {shard.Info.Rows}/{shard.Samples} samples" +
                    (shard.Info.File is { } file ? $" -> {Path.Combine(cfg.OutputDir, file)}" : " (none kept: no file)"));
                ShardWritten?.Invoke(shard.Info);
            }
        }
        Stats = DistillStats.From(_state.Counts, _teacher?.Name ?? TeacherName(), _problems.Rows, _problems.Decontaminated,
            cfg.Sampling.SamplesPerProblem, _state.Shards.Count(s => s.File is not null), _state.Seconds);
        if (_dp.IsMain) AtomicFile.WriteAllText(Path.Combine(cfg.OutputDir, DistillOutput.StatsFile), JsonSerializer.Serialize(Stats, DistillOutput.Json));
        _log.WriteLine();
        _log.Write(Stats.ToTable());
        _log.WriteLine($"dataset: {Path.Combine(cfg.OutputDir, DistillOutput.DataDir)} (train on it with recipe: sft, data.path: {Path.Combine(cfg.OutputDir, DistillOutput.DataDir)}, data.format: messages)");
    }

    private string TeacherName() => cfg.Teacher.Kind == TeacherKind.Local ? "local:" + cfg.Teacher.Path : $"openai:{cfg.Teacher.Model}@{cfg.Teacher.BaseUrl}";

    /// <summary>A sample's seed: a pure function of (seed, problem, sample).</summary>
    private long SampleSeed(int problem, int sample)
    {
        ulong x = (ulong)cfg.Seed ^ ((ulong)problem << 16) ^ (ulong)sample ^ 0x5851F42D4C957F2DUL;
        return (long)(Rng.SplitMix64(ref x) & 0x7FFF_FFFF_FFFF_FFFF);
    }

    /// <summary>A teacher sample with its reward calls, as ranks exchange them.</summary>
    private sealed record ScoredRequest(TeacherSample Sample, IReadOnlyList<RewardCall> Calls);

    private sealed record ShardResult(ShardInfo Info, int Samples, double PassRate, long CompletionTokens, double GenerationSeconds, double RewardSeconds,
        Dictionary<string, long> Rejected)
    {
        public List<(string, double)> Metrics(DistillCounts total, long retries)
        {
            var m = new List<(string, double)>
            {
                ("shard/pass_rate", PassRate), ("shard/kept", Info.Rows), ("shard/samples", Samples),
                ("pass_rate", total.PassRate), ("solve_rate", total.SolveRate), ("kept", total.Kept), ("samples", total.Samples),
                ("tokens_per_s/teacher", CompletionTokens / Math.Max(GenerationSeconds, 1e-9)),
                ("time/generation_s", GenerationSeconds), ("time/reward_s", RewardSeconds), ("teacher/retries", retries),
            };
            m.AddRange(total.Rejected.Select(kv => ($"rejected/{kv.Key}", (double)kv.Value)));
            return m;
        }
    }

    private async Task<ShardResult> RunShard(int index, int first, int end, CancellationToken ct)
    {
        int k = cfg.Sampling.SamplesPerProblem;
        var problems = _problems.Items.Skip(first).Take(end - first).ToList();
        var requests = problems.SelectMany(p => Enumerable.Range(0, k).Select(j => new TeacherRequest(_template.Messages(p.Prompt), SampleSeed(p.Index, j)))).ToList();
        var (mine, count) = _dp.ShardRange(problems.Count);     // this rank's problems (one process: all)
        var sw = Stopwatch.StartNew();
        var local = await _teacher!.GenerateAsync(requests, mine * k, count * k, cfg.Sampling, ct);
        double localGen = sw.Elapsed.TotalSeconds;
        if (local.Count != count * k) throw new InvalidOperationException($"teacher {_teacher.Name} returned {local.Count} samples for {count * k} requests");

        sw.Restart();
        var inputs = local.Select((s, i) => new RewardInput(problems[mine + i / k].Prompt, s.Text, problems[mine + i / k].Columns)).ToList();
        var localScored = await _rewards.ScoreAsync(inputs, ct);
        var times = _dp.Max(localGen, sw.Elapsed.TotalSeconds);
        double genSeconds = times[0], rewardSeconds = times[1];
        var all = _dp.Gather(local.Select((s, i) => new ScoredRequest(s, localScored.Calls[i])).ToList());   // problem order
        var samples = all.Select(x => x.Sample).ToList();
        var scored = RewardBatchResult.FromCalls(_rewards.Names, localScored.Weights, all.Select(x => x.Calls).ToList());

        var c = _state.Counts;
        var rows = new List<DistillRow>();
        var rejected = new Dictionary<string, long>();
        long passed = 0, tokens = 0;
        for (int p = 0; p < problems.Count; p++)
        {
            var scoredSamples = Enumerable.Range(p * k, k).Select(i =>
            {
                double? reward = samples[i].Error is null ? scored.Totals[i] : null;
                return new ScoredSample(samples[i], reward, _filter.Check(samples[i], reward));
            }).ToList();
            var verdicts = _filter.SelectForProblem(scoredSamples);
            int problemPassed = 0, problemKept = 0;
            for (int j = 0; j < k; j++)
            {
                int i = p * k + j;
                var s = samples[i];
                c.Samples++;
                c.PromptTokens += s.PromptTokens;
                c.CompletionTokens += s.CompletionTokens;
                tokens += s.CompletionTokens;
                c.Finished(s.FinishReason);
                if (s.Error is null && scored.Totals[i] >= cfg.Filters.MinReward) problemPassed++;
                if (verdicts[j] is { } reason)
                {
                    c.Reject(reason);
                    rejected[reason] = rejected.GetValueOrDefault(reason) + 1;
                    continue;
                }
                problemKept++;
                c.KeptCompletionTokens += s.CompletionTokens;
                rows.Add(Row(problems[p], j, s, scored.Totals[i]!.Value, scored, i));
            }
            c.Problems++;
            c.Passed += problemPassed;
            passed += problemPassed;
            c.Kept += problemKept;
            if (problemPassed > 0) c.ProblemsSolved++;
            if (problemKept > 0) c.ProblemsKept++;
            c.PassShareSum += (double)problemPassed / k;
        }
        var file = _dp.IsMain ? DistillOutput.WriteShard(cfg.OutputDir, index, rows) : DistillOutput.ShardFile(index, rows.Count);
        var info = new ShardInfo { Index = index, File = file, FirstProblem = first, EndProblem = end, Rows = rows.Count };
        return new ShardResult(info, samples.Count, (double)passed / samples.Count, tokens, genSeconds, rewardSeconds, rejected);
    }

    private DistillRow Row(Problem p, int sample, TeacherSample s, double reward, RewardBatchResult scored, int i)
    {
        var user = _template.UserTurn(p.Prompt);
        var messages = new List<MessageRow>();
        if (cfg.Output.IncludeSystemPrompt && _template.SystemPrompt is { } system) messages.Add(new MessageRow { Role = "system", Content = system });
        messages.Add(new MessageRow { Role = "user", Content = user });
        messages.Add(new MessageRow { Role = "assistant", Content = s.Text });
        return new DistillRow
        {
            Messages = messages, Prompt = user, Completion = s.Text,
            ProblemId = p.Id, ProblemIndex = p.Index, SourceFile = p.SourceFile, SourceRow = p.SourceRow,
            Teacher = _teacher!.Name, SampleIndex = sample, Reward = reward,
            Verdicts = scored.Names.Select((name, r) => new VerdictRow { Name = name, Score = scored.Calls[i][r].Score, Reason = scored.Calls[i][r].Result.Reason }).ToList(),
            PromptTokens = s.PromptTokens, CompletionTokens = s.CompletionTokens, FinishReason = s.FinishReason,
        };
    }
}
