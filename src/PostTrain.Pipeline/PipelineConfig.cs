// A pipeline recipe: named stages, each an ordinary recipe (a YAML file or a registered recipe name) plus overrides,
// run in order into <output_dir>/<stage name>. Override values may refer to an earlier stage's folder as ${name}
// (e.g. model.path: ${sft}/final) and to the pipeline's folder as ${output_dir}.
using PostTrain.Training.Recipes;
using YamlDotNet.RepresentationModel;

namespace PostTrain.Pipeline;

public sealed record PipelineConfig : RecipeConfig
{
    public required List<PipelineStageConfig> Stages { get; init; }

    /// <summary>When a finished stage's resolved config (or an earlier stage's) changed since it ran: `rerun` moves its
    /// folder aside to &lt;name&gt;.stale-&lt;time&gt; and runs it again; `error` stops with a message instead.</summary>
    public ChangedStagePolicy OnChangedStage { get; init; } = ChangedStagePolicy.Rerun;
}

public enum ChangedStagePolicy { Rerun, Error }

public sealed record PipelineStageConfig
{
    /// <summary>The stage's folder name under output_dir and how later stages refer to it (${name}).</summary>
    public required string Name { get; init; }

    /// <summary>A recipe YAML file (relative to the working directory) or a registered recipe name (posttrain ls).</summary>
    public required string Recipe { get; init; }

    /// <summary>Overrides of the stage recipe's keys, dotted like on the command line (optimizer.lr: 1e-4); values
    /// can be lists or sections.</summary>
    public Dictionary<string, YamlNode> Set { get; init; } = new();

    /// <summary>Leave this stage out (later stages must not refer to it).</summary>
    public bool Skip { get; init; }
}
