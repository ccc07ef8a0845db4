// The expert-parallel layout a recipe asks for (`distributed.expert_parallel`, `distributed.max_devices_per_token`):
// checked against the number of processes and the model's n_routed_experts (read from the built-in model or the
// directory's config.json before the model is built), then the world split into EP and replica groups. Null when the
// run holds every expert on every rank (expert_parallel 1, the default, or one process).
using PostTrain.Core.Distributed;
using PostTrain.Core.Model;
using PostTrain.Runtime;
using PostTrain.Training.Recipes;

namespace PostTrain.Training.Distributed;

public static class ExpertParallelSetup
{
    public static ExpertParallelism? Create(DistributedConfig d, ModelConfigSection model, ProcessGroup world, bool lora)
    {
        d.CheckExpertParallel(world.Size, d.ExpertParallel > 1 ? RoutedExperts(model) : 0);
        if (d.ExpertParallel == 1) return null;
        if (lora) throw new RecipeConfigException("distributed.expert_parallel: LoRA trains adapters on a frozen model; use expert_parallel 1 with lora");
        return ExpertParallelism.Create(world, d.ExpertParallel, d.MaxDevicesPerToken);
    }

    private static int RoutedExperts(ModelConfigSection m)
    {
        if (BuiltinModels.ByName.TryGetValue(m.Path, out var make) && !Directory.Exists(m.Path)) return make().NRoutedExperts;
        string config;
        try { config = Path.Combine(PostTrain.Data.Hub.HfHubCache.ResolvePath(m.Path), "config.json"); }
        catch (DirectoryNotFoundException e) { throw new RecipeConfigException($"model.path: {e.Message}"); }
        if (!File.Exists(config)) throw new RecipeConfigException($"model.path: '{m.Path}' has no config.json");
        return ModelConfig.Load(config).NRoutedExperts;
    }
}
