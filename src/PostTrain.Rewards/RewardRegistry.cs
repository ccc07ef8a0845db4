// Built-in rewards by name plus plugins found in a rewards/ directory (*.js, *.csx; the name is the file name
// without extension), created from recipe specs. Built-in options are checked (unknown keys are errors); plugin
// options are handed to the plugin as they are. Unknown reward names are errors that suggest the closest name.
// A plugin may not reuse a built-in's name, and two plugins may not share one (x.js and x.csx).
// Register() adds rewards defined elsewhere (e.g. the math and code rewards) under a new name.
using PostTrain.Rewards.Builtins;
using PostTrain.Rewards.Plugins;

namespace PostTrain.Rewards;

public sealed class RewardRegistry
{
    private readonly Dictionary<string, (string Description, Func<RewardOptions, IReward> Create)> _builtins = new(StringComparer.Ordinal);
    private readonly Dictionary<string, PluginFile> _plugins = new(StringComparer.Ordinal);

    /// <param name="rewardsDir">The plugin folder; null or missing = no plugins.</param>
    public RewardRegistry(string? rewardsDir = null)
    {
        Register("format", FormatReward.Description, FormatReward.FromOptions);
        Register("tag_count", TagCountReward.Description, TagCountReward.FromOptions);
        Register("length", LengthReward.Description, LengthReward.FromOptions);
        Register("repetition", RepetitionReward.Description, RepetitionReward.FromOptions);
        Register("language", LanguageReward.Description, LanguageReward.FromOptions);
        Register("contains", ContainsReward.Description, ContainsReward.FromOptions);
        Register("regex", RegexReward.Description, RegexReward.FromOptions);
        Register("math", MathReward.Description, MathReward.FromOptions);
        Register("code", CodeReward.Description, CodeReward.FromOptions);
        Register("countdown", CountdownReward.Description, CountdownReward.FromOptions);
        RewardsDir = rewardsDir;
        if (rewardsDir is null || !Directory.Exists(rewardsDir)) return;
        foreach (var path in Directory.EnumerateFiles(rewardsDir).Where(PluginFile.IsPlugin).Order(StringComparer.Ordinal))
        {
            var plugin = PluginFile.Read(path);
            if (_builtins.ContainsKey(plugin.Name))
                throw new RewardConfigException($"{path}: plugin name '{plugin.Name}' is the name of a built-in reward; rename the file");
            if (_plugins.TryGetValue(plugin.Name, out var other))
                throw new RewardConfigException($"{path}: plugin name '{plugin.Name}' is also used by {other.Path}; rename one of them");
            _plugins[plugin.Name] = plugin;
        }
    }

    public string? RewardsDir { get; }

    /// <summary>Adds a built-in reward. The factory reads its options from RewardOptions; unread keys become errors.</summary>
    public void Register(string name, string description, Func<RewardOptions, IReward> factory)
    {
        if (!_builtins.TryAdd(name, (description, factory))) throw new ArgumentException($"reward '{name}' is already registered", nameof(name));
        if (_plugins.TryGetValue(name, out var plugin))
            throw new RewardConfigException($"{plugin.Path}: plugin name '{name}' is the name of a built-in reward; rename the file");
    }

    /// <summary>Built-ins (in registration order), then plugins (by name).</summary>
    public IReadOnlyList<RewardInfo> List() =>
        _builtins.Select(b => new RewardInfo(b.Key, "builtin", b.Value.Description))
            .Concat(_plugins.Values.OrderBy(p => p.Name, StringComparer.Ordinal).Select(p => new RewardInfo(p.Name, p.Kind, p.Description, p.Path)))
            .ToList();

    public IReadOnlyList<WeightedReward> CreateAll(IEnumerable<RewardSpec> specs) => specs.Select(Create).ToList();

    public WeightedReward Create(RewardSpec spec)
    {
        if (!double.IsFinite(spec.Weight)) throw new RewardConfigException($"reward '{spec.Name}': weight must be a finite number (got {spec.Weight})");
        return new WeightedReward(Create(spec.Name, spec.Options), spec.Weight);
    }

    /// <summary>Creates a reward from a built-in name, a plugin name, or a path to a .js/.csx file.</summary>
    public IReward Create(string nameOrPath, IReadOnlyDictionary<string, object?>? options = null)
    {
        if (_builtins.TryGetValue(nameOrPath, out var builtin))
        {
            var reader = new RewardOptions(nameOrPath, options);
            var reward = builtin.Create(reader);
            reader.EnsureAllUsed();
            return reward;
        }
        if (_plugins.TryGetValue(nameOrPath, out var plugin)) return plugin.Load(options);
        if (PluginFile.IsPlugin(nameOrPath) || nameOrPath.Contains('/') || nameOrPath.Contains('\\'))
        {
            if (!File.Exists(nameOrPath)) throw new RewardConfigException($"reward file '{nameOrPath}' not found");
            if (!PluginFile.IsPlugin(nameOrPath)) throw new RewardConfigException($"reward file '{nameOrPath}': expected a .js or .csx plugin");
            return PluginFile.Read(nameOrPath).Load(options);
        }
        var names = _builtins.Keys.Concat(_plugins.Keys).ToList();
        var hint = NameSuggester.Closest(nameOrPath, names);
        throw new RewardConfigException($"unknown reward '{nameOrPath}'" + (hint is null ? "" : $"; did you mean '{hint}'?")
            + $" (built-in: {string.Join(", ", _builtins.Keys)}"
            + (_plugins.Count > 0 ? $"; plugins in {RewardsDir}: {string.Join(", ", _plugins.Keys.Order())}" : RewardsDir is null ? "" : $"; no plugins in {RewardsDir}")
            + ")");
    }
}
