// The checkpoint of a run with several ranks (a run of one process keeps the single-process layout: model/,
// optimizer.safetensors, trainer_state.json). Step directory step-NNNNNN/:
//   rank-RRRRR-of-WWWWW.safetensors  each rank's share, written by that rank (DistCheckpointWriter):
//       optimizer/<param>.<state>    optimizer state of the parameters in the rank's ZeRO partition share (stage 1/2:
//                                    the state it holds; stage 0: every rank holds all, each writes its share once)
//       param/<name>                 parameters sharded over the ranks (RunModel.Sharded, e.g. experts), as slices
//   model/                           the model directory, as one process writes it (rank 0: under data parallelism
//                                    every rank holds every whole parameter, so nothing is gathered)
//   posttrain_config.yaml            the resolved config (rank 0)
//   manifest.json                    written last by rank 0 after a barrier: world size, ZeRO stage, step, trainer
//                                    state, and every tensor's pieces (file, global shape, slice). It commits the step.
// Resume at any number of ranks and ZeRO stage: every rank loads model/, then reads from the rank files only the
// optimizer entries of the parameters its own optimizer updates (and its slice of each sharded parameter and of its
// optimizer state), whichever ranks wrote them.
using System.Text.Json.Nodes;
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Distributed;
using PostTrain.Training.Infra;
using static TorchSharp.torch;

namespace PostTrain.Training.Run;

public static class DistributedCheckpoint
{
    public const string OptimizerPrefix = "optimizer/";
    public const string ParamPrefix = "param/";

    /// <summary>Collective: saves checkpoint state.Step of the run; <paramref name="writeShared"/> (rank 0) writes the
    /// model directory and config into the step directory before the manifest commits it.</summary>
    public static CheckpointInfo Save(CheckpointManager checkpoints, DataParallelOptimizer optimizer, IReadOnlyDictionary<string, TensorSlice> sharded,
        TrainerState state, Action<string> writeShared)
    {
        var group = optimizer.Group;
        string dir = checkpoints.StepDir(state.Step);
        if (group.IsMain) checkpoints.PrepareInPlace(state.Step);      // a stale directory of this step is removed first
        group.Barrier();
        using var scope = NewDisposeScope();
        var entries = new List<DistCheckpointWriter.Entry>();
        var byName = optimizer.Named.ToDictionary(p => p.Name, p => p.Param, StringComparer.Ordinal);
        foreach (var (name, slice) in sharded)
            entries.Add(new(ParamPrefix + name, Param(byName, name, dir), slice));
        var share = optimizer.PartitionNames.ToHashSet(StringComparer.Ordinal);
        var local = optimizer.Local.StateDict();               // copies outside any dispose scope: disposed below
        foreach (var (key, t) in local)
        {
            string param = ParamOf(key, byName);
            var slice = sharded.TryGetValue(param, out var s) && t.shape.SequenceEqual(s.LocalShape) && t.dim() > 0 ? s : TensorSlice.Whole(t.shape);
            if (share.Contains(param) || sharded.ContainsKey(param)) entries.Add(new(OptimizerPrefix + key, t, slice, param));
        }
        var run = new JsonObject
        {
            ["step"] = state.Step,
            ["zero_stage"] = (int)optimizer.Stage,
            [CheckpointManager.TrainerStateKey] = JsonNode.Parse(state.ToJson()),
        };
        try { DistCheckpointWriter.Save(group, dir, entries, run, () => writeShared(dir)); }
        finally { foreach (var t in local.Values) t.Dispose(); }
        var info = group.IsMain ? checkpoints.CommitInPlace(state) : new CheckpointInfo(state.Step, dir, state);
        group.Barrier();                                                // committed before any rank goes on
        return info;
    }

    /// <summary>Loads this rank's share of a committed distributed checkpoint: its slices of sharded parameters, and the
    /// optimizer state of the parameters its optimizer updates (any saving world size or ZeRO stage).</summary>
    public static void Load(string dir, DataParallelOptimizer optimizer, IReadOnlyDictionary<string, TensorSlice> sharded)
    {
        using var reader = DistCheckpointReader.Open(dir);
        using var scope = NewDisposeScope();
        var byName = optimizer.Named.ToDictionary(p => p.Name, p => p.Param, StringComparer.Ordinal);
        using (no_grad())
            foreach (var (name, slice) in sharded)
                Param(byName, name, dir).copy_(reader.Read(ParamPrefix + name, slice));
        var mine = optimizer.OwnedNames.ToHashSet(StringComparer.Ordinal);
        var device = optimizer.Parameters.Count > 0 ? optimizer.Parameters[0].device : CPU;
        var state = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (key, pieces) in reader.Manifest.Tensors)
        {
            if (!key.StartsWith(OptimizerPrefix, StringComparison.Ordinal) || pieces[0].Param is not string param || !mine.Contains(param)) continue;
            var slice = pieces[0].Dim is not null && sharded.TryGetValue(param, out var s) ? s : null;
            state[key[OptimizerPrefix.Length..]] = reader.Read(key, slice).to(device);
        }
        try { optimizer.Local.LoadStateDict(state); }
        catch (ArgumentException e) { throw new InvalidDataException($"{Path.Combine(dir, DistCheckpointManifest.FileName)}: optimizer state: {e.Message}", e); }
    }

    /// <summary>The parameter an optimizer-state key belongs to: the longest parameter name that is a dotted prefix.</summary>
    private static string ParamOf(string key, IReadOnlyDictionary<string, TorchSharp.Modules.Parameter> names)
    {
        for (int dot = key.LastIndexOf('.'); dot > 0; dot = key.LastIndexOf('.', dot - 1))
            if (names.ContainsKey(key[..dot])) return key[..dot];
        throw new InvalidOperationException($"optimizer state '{key}' belongs to no parameter of the model");
    }

    private static TorchSharp.Modules.Parameter Param(IReadOnlyDictionary<string, TorchSharp.Modules.Parameter> byName, string name, string dir) =>
        byName.TryGetValue(name, out var p) ? p : throw new InvalidDataException($"{dir}: sharded parameter '{name}' is not a parameter of the model");
}
