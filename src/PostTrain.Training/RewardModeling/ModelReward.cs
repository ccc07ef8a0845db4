// The `model` reward: scores completions with a trained reward model (the rm recipe's output). The prompt and the
// completion are rendered as a user turn and the assistant's answer with the chat template the RM was trained with,
// and a whole batch is scored in a few forward passes (batch_size sequences each, similar lengths together; one call
// per batch through IBatchReward). The model is loaded once, when the reward is created. Options:
//   path (required): the reward model directory; batch_size (16); device (auto | cpu | cuda | cuda:N);
//   chat_template (auto | model | deepseek_v3 | plain | a .jinja file); max_length (1024): longer renderings keep their last max_length tokens
//   (the reward is read at the end);
//   transform: none (the raw score), sigmoid (1 / (1 + e^-r): the Bradley-Terry probability of beating a
//   zero-reward answer, in (0, 1)), or standardize ((r - mean) / std over the scores of one call, i.e. one batch,
//   population std; 0 when they are all equal). The raw score is always in the metrics as `raw`.
using PostTrain.Core.Model;
using PostTrain.Core.Runtime;
using PostTrain.Data.Examples;
using PostTrain.Data.Templates;
using PostTrain.Data.Tokenizers;
using PostTrain.Rewards;
using PostTrain.Training.Recipes;
using static TorchSharp.torch;

namespace PostTrain.Training.RewardModeling;

public enum RewardTransform { None, Sigmoid, Standardize }

public sealed class ModelReward : IBatchReward, IDisposable
{
    public const string Description = "score from a trained reward model (options: path, batch_size, device, transform none|sigmoid|standardize)";

    private readonly RewardModel _model;
    private readonly ITokenizer _tokenizer;
    private readonly IChatTemplate _template;
    private readonly Device _device;
    private readonly int _batchSize, _maxLength;
    private readonly object _gate = new();

    public ModelReward(RewardModel model, ITokenizer tokenizer, IChatTemplate template, Device device,
        int batchSize = 16, int maxLength = 1024, RewardTransform transform = RewardTransform.None)
    {
        (_model, _tokenizer, _template, _device) = (model, tokenizer, template, device);
        (_batchSize, _maxLength, Transform) = (batchSize, maxLength, transform);
        foreach (var p in _model.parameters()) p.requires_grad = false;
        _model.eval();
    }

    public string Name => "model";
    public RewardTransform Transform { get; }

    public static ModelReward FromOptions(RewardOptions o)
    {
        string path = o.StringOrNull("path") ?? throw new RewardConfigException("reward 'model': option 'path' (the reward model directory) is required");
        int batchSize = o.Int("batch_size", 16), maxLength = o.Int("max_length", 1024);
        string deviceSpec = o.String("device", "auto"), templateName = o.String("chat_template", "auto");
        string transformName = o.String("transform", "none");
        if (batchSize < 1) throw new RewardConfigException($"reward 'model': option 'batch_size' must be >= 1, got {batchSize}");
        if (maxLength < 1) throw new RewardConfigException($"reward 'model': option 'max_length' must be >= 1, got {maxLength}");
        var transform = transformName switch
        {
            "none" => RewardTransform.None,
            "sigmoid" => RewardTransform.Sigmoid,
            "standardize" => RewardTransform.Standardize,
            _ => throw new RewardConfigException($"reward 'model': option 'transform' must be none, sigmoid or standardize, got '{transformName}'"),
        };
        if (!Directory.Exists(path)) throw new RewardConfigException($"reward 'model': path '{path}' is not a directory");
        try
        {
            var device = DeviceSelector.Resolve(deviceSpec, "reward 'model' option 'device'");
            var tokenizer = ModelSetup.LoadTokenizer(path);
            var template = ChatTemplates.Resolve(templateName, tokenizer, path, "reward 'model' option 'chat_template'");
            var model = RewardModelFiles.Load(path, device);
            return new ModelReward(model, tokenizer, template, device, batchSize, maxLength, transform);
        }
        catch (Exception e) when (e is not RewardConfigException)
        {
            throw new RewardConfigException($"reward 'model': {e.Message}");
        }
    }

    /// <summary>The token ids the model scores for one sample (as the rm recipe renders a pair's side).</summary>
    public int[] Render(RewardInput input)
    {
        var ids = _template.Render(new ChatExample([ChatMessage.User(input.Prompt), ChatMessage.Assistant(input.Completion)])).InputIds;
        return ids.Length <= _maxLength ? ids : ids[^_maxLength..];
    }

    public RewardResult Score(RewardInput input, CancellationToken cancellationToken) => ScoreBatch([input], cancellationToken)[0];

    public IReadOnlyList<RewardResult> ScoreBatch(IReadOnlyList<RewardInput> inputs, CancellationToken cancellationToken)
    {
        if (inputs.Count == 0) return [];
        var ids = inputs.Select(Render).ToList();
        double[] raw;
        lock (_gate) raw = RewardScoring.Score(_model, ids, _tokenizer.PadId, _batchSize, _device, cancellationToken);
        var scores = Apply(Transform, raw);
        return scores.Select((s, i) => new RewardResult(s, Metrics: new Dictionary<string, double> { ["raw"] = raw[i] })).ToList();
    }

    /// <summary>The transform over one call's raw scores.</summary>
    public static double[] Apply(RewardTransform transform, IReadOnlyList<double> raw)
    {
        switch (transform)
        {
            case RewardTransform.Sigmoid:
                return raw.Select(r => 1.0 / (1.0 + Math.Exp(-r))).ToArray();
            case RewardTransform.Standardize:
                double mean = raw.Average();
                double std = Math.Sqrt(raw.Sum(r => (r - mean) * (r - mean)) / raw.Count);
                return raw.Select(r => std > 0 ? (r - mean) / std : 0.0).ToArray();
            default:
                return [.. raw];
        }
    }

    public void Dispose() => _model.Dispose();
}
