// Reward models as Hugging Face directories, laid out like transformers' sequence-classification models:
// config.json (the backbone's fields plus architectures ["DeepseekV3ForSequenceClassification"] and num_labels 1)
// and model.safetensors holding the backbone as `model.*` and the head as `score.weight` (1, H). Written atomically
// (PretrainedModel's directory writer). A reward model starts either from a saved one (Load) or from a causal-LM
// checkpoint (FromCausalLm: its lm_head and MTP layers are ignored, the head is drawn small from a seed).
using System.Text.Json;
using System.Text.Json.Nodes;
using PostTrain.Core.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Model;

public static class RewardModelFiles
{
    public const string ScoreWeight = "score.weight";
    public const string Architecture = "DeepseekV3ForSequenceClassification";
    public const string ArchitectureV2 = "DeepseekV2ForSequenceClassification";

    /// <summary>True when dir/config.json names a sequence-classification architecture (a saved reward model).</summary>
    public static bool IsRewardModelDir(string dir)
    {
        string path = Path.Combine(dir, "config.json");
        if (!File.Exists(path)) return false;
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) is JsonObject o && o["architectures"] is JsonArray a &&
                   a.Any(x => x is JsonValue v && v.TryGetValue(out string? s) && s.EndsWith("ForSequenceClassification", StringComparison.Ordinal));
        }
        catch (JsonException) { return false; }   // ModelConfig.Load reports the bad file with its line
    }

    /// <summary>Loads a saved reward model. A checkpoint without score.weight is an error naming that tensor.</summary>
    public static RewardModel Load(string dir, Device? device = null)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{dir}: reward model directory not found");
        var rm = new RewardModel(ModelConfig.Load(Path.Combine(dir, "config.json")));
        try { LoadWeights(rm, dir); }
        catch
        {
            rm.Dispose();
            throw;
        }
        if (device is not null && device.type != DeviceType.CPU) rm.to(device);
        return rm;
    }

    /// <summary>Copies a saved reward model's weights (dir: model.safetensors or shards) into <paramref name="rm"/>.</summary>
    public static void LoadWeights(RewardModel rm, string dir)
    {
        var tensors = SafeTensors.Load(dir, new SafeTensorsLoadOptions { DequantizeFp8 = true });
        try
        {
            long[] shape = [1, rm.Config.HiddenSize];
            if (!tensors.TryGetValue(ScoreWeight, out var head))
                throw new CheckpointMismatchException(dir, [(ScoreWeight, shape)], [], [],
                    $"no reward head '{ScoreWeight}': is this a causal-LM checkpoint? Start a reward model from it with the rm recipe (model.path)");
            if (!head.shape.SequenceEqual(shape))
                throw new CheckpointMismatchException(dir, [], [], [(ScoreWeight, shape, head.shape, dir)],
                    "a reward model's head has one output (num_labels 1)");
            HfStateDict.Load(rm.Backbone, tensors.Where(kv => kv.Key != ScoreWeight).ToDictionary(), dir);
            using (no_grad()) rm.ScoreWeight.copy_(head.to(ScalarType.Float32));
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    /// <summary>A reward model whose backbone is the causal-LM checkpoint in <paramref name="dir"/> (lm_head and MTP
    /// layers ignored) and whose head is drawn from normal(0, headStd) with <paramref name="seed"/>.</summary>
    public static RewardModel FromCausalLm(string dir, long seed, double headStd = 0.02)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{dir}: model directory not found");
        var config = ModelConfig.Load(Path.Combine(dir, "config.json"));
        var tensors = SafeTensors.Load(dir, new SafeTensorsLoadOptions { DequantizeFp8 = true });
        var rm = new RewardModel(config);
        try
        {
            HfStateDict.Load(rm.Backbone, tensors, dir);
        }
        catch
        {
            rm.Dispose();
            throw;
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
        rm.InitScore(headStd, seed);
        return rm;
    }

    /// <summary>A reward model with random weights (the backbone as DeepSeekForCausalLM.InitWeights draws it).</summary>
    public static RewardModel Random(ModelConfig config, long seed, double std = 0.02)
    {
        var rm = new RewardModel(config);
        rm.Backbone.InitWeights(std, seed);
        rm.InitScore(std, seed);
        return rm;
    }

    /// <summary>config.json for the reward model: the backbone's fields, a sequence-classification architecture,
    /// num_labels 1, and pad_token_id (transformers finds the last real token by it) when given.</summary>
    public static string ConfigJson(RewardModel rm, int? padTokenId = null)
    {
        var o = rm.Config.ToJson();
        o["architectures"] = new JsonArray(rm.Config.ModelType == "deepseek_v2" ? ArchitectureV2 : Architecture);
        o["num_labels"] = 1;
        o["id2label"] = new JsonObject { ["0"] = "LABEL_0" };
        o["label2id"] = new JsonObject { ["LABEL_0"] = 0 };
        if (rm.Config.PadTokenId is null && padTokenId is int pad) o["pad_token_id"] = pad;
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>The checkpoint tensors: model.* (Hugging Face names, experts per expert) and score.weight.</summary>
    public static Dictionary<string, Tensor> Export(RewardModel rm)
    {
        var state = HfStateDict.Export(rm.Backbone);
        state[ScoreWeight] = rm.ScoreWeight.detach();
        return state;
    }

    /// <summary>Writes config.json and model.safetensors (fp32, or <paramref name="dtype"/>) atomically, plus extra
    /// text files (e.g. tokenizer.json).</summary>
    public static void Save(RewardModel rm, string dir, int? padTokenId = null, ScalarType dtype = ScalarType.Float32,
        IReadOnlyDictionary<string, string>? extraFiles = null)
    {
        using var scope = NewDisposeScope();
        var state = Export(rm);
        var outState = state.ToDictionary(kv => kv.Key, kv =>
            kv.Value.dtype == dtype || !kv.Value.is_floating_point() || kv.Key.EndsWith("e_score_correction_bias", StringComparison.Ordinal)
                ? kv.Value : kv.Value.to(dtype));
        SafeTensors.SaveDirectory(dir, outState, ConfigJson(rm, padTokenId), new CheckpointSaveOptions { ExtraFiles = extraFiles });
    }
}
