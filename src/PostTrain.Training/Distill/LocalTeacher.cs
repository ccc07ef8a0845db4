// A teacher that is a PostTrain model (a Hugging Face-style directory, e.g. an SFT run's final/, or a built-in name)
// run by the generation engine: each request's conversation is rendered by the chat template with the assistant
// prefix, and one GenerateAsync call is one batched TokenGenerator.Generate (cut into batches of batch_size rows).
// The sampler's noise depends on (seed of the call's first request, row index in the call, token index), so the same
// request list always gives the same samples; the recipe calls once per shard, which makes resumed runs reproducible.
// A data-parallel rank generates its rows of the shard's call with their row indices in the whole call.
using PostTrain.Core.Generation;
using PostTrain.Core.Model;
using PostTrain.Data.Templates;
using PostTrain.Data.Tokenizers;
using PostTrain.Training.Recipes;

namespace PostTrain.Training.Distill;

public sealed class LocalTeacher : ITeacher
{
    private readonly DeepSeekForCausalLM _model;
    private readonly ITokenizer _tokenizer;
    private readonly IChatTemplate _template;
    private readonly TokenGenerator _generator;

    public string Name { get; }
    public long Retries => 0;

    public LocalTeacher(TeacherConfig cfg, long seed, TextWriter log)
    {
        if (string.IsNullOrEmpty(cfg.Path)) throw new RecipeConfigException("teacher.path: missing (a model directory or a built-in name) for teacher.kind: local");
        if (cfg.BatchSize < 1) throw new RecipeConfigException($"teacher.batch_size: must be >= 1, got {cfg.BatchSize}");
        var section = new ModelConfigSection { Path = cfg.Path, Tokenizer = cfg.Tokenizer, Dtype = cfg.Dtype, Device = cfg.Device };
        var loaded = ModelSetup.Load(section, seed, log);
        (_model, _tokenizer) = (loaded.Model, loaded.Tokenizer);
        _model.eval();
        _template = ChatTemplates.Resolve(cfg.ChatTemplate, _tokenizer, cfg.Tokenizer ?? cfg.Path, "teacher.chat_template", ChatTemplates.ParseKwargs(cfg.ChatTemplateKwargs));
        _generator = new TokenGenerator(_model, new GenerationOptions { MaxBatchSize = cfg.BatchSize });
        Name = "local:" + cfg.Path;
    }

    public Task<IReadOnlyList<TeacherSample>> GenerateAsync(IReadOnlyList<TeacherRequest> requests, DistillSamplingConfig s, CancellationToken ct) =>
        GenerateAsync(requests, 0, requests.Count, s, ct);

    public Task<IReadOnlyList<TeacherSample>> GenerateAsync(IReadOnlyList<TeacherRequest> requests, int first, int count, DistillSamplingConfig s, CancellationToken ct) =>
        Task.Run(() => Generate(requests, first, count, s, ct), ct);

    /// <summary>Rows [first, first + count) of the call: noise seeded by the call's first request, rows keyed by their
    /// index in the whole call.</summary>
    private IReadOnlyList<TeacherSample> Generate(IReadOnlyList<TeacherRequest> requests, int first, int count, DistillSamplingConfig s, CancellationToken ct)
    {
        if (count == 0) return [];
        var prompts = requests.Skip(first).Take(count).Select(r => _template.RenderPrompt(r.Messages)).ToList();
        var sampling = new SamplingParams(s.Temperature, s.TopP, MaxNewTokens: s.MaxTokens, StopTokenIds: [_tokenizer.EosId], Seed: requests[0].Seed,
            FirstRowKey: first);
        var results = _generator.Generate(prompts, sampling, ct);
        return results.Select((r, i) => new TeacherSample(CompletionText.Decode(_tokenizer, r), prompts[i].Length, r.Length, r.FinishReason)).ToList();
    }

    public void Dispose() => _model.Dispose();
}
