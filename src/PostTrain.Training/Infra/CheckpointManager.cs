// Checkpoint directories of one run, with no knowledge of models: the trainer writes its files through a
// callback into a temp directory; the manager adds trainer_state.json, renames the directory into place
// (step-000120/), points `latest` at it, and prunes old ones. A crash or exception at any point leaves the
// previous checkpoint and `latest` intact: only fully renamed step directories with a readable
// trainer_state.json count. Assumes one writer per run directory; directories are not fsynced.
// A distributed save (several ranks write their files in place, DistributedCheckpoint) is committed by its
// manifest.json instead, which holds the trainer state: PrepareInPlace removes a stale directory of the step,
// CommitInPlace (after the manifest) points `latest` at it and prunes. A step directory with neither manifest.json
// nor trainer_state.json is a save killed midway: it never counts, and the next run's start removes it.
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using PostTrain.Core.Checkpoints;

namespace PostTrain.Training.Infra;

public sealed record CheckpointInfo(long Step, string Directory, TrainerState State);

public sealed partial class CheckpointManager
{
    public const string StateFileName = "trainer_state.json";
    public const string LatestFileName = "latest";
    public const string TrainerStateKey = "trainer_state";   // in a distributed manifest's "run"

    private readonly int _keepLast;

    public string RunDir { get; }

    public CheckpointManager(string runDir, int keepLast)
    {
        if (keepLast < 1) throw new ArgumentOutOfRangeException(nameof(keepLast), keepLast, "checkpoint.keep_last must be >= 1");
        RunDir = Path.GetFullPath(runDir);
        _keepLast = keepLast;
        Directory.CreateDirectory(RunDir);
        RemoveLeftovers(RunDir);
    }

    /// <summary>Removes what a killed run of this directory left half-written: checkpoint temp/deleting folders, and the
    /// temp files and folders of atomic writes (e.g. .final.tmp-*, .final.old-*, metrics.jsonl.tmp-*). Only names these
    /// writers make (a 32-hex-digit suffix) are touched.</summary>
    public static void RemoveLeftovers(string runDir)
    {
        foreach (var stale in Directory.EnumerateDirectories(runDir).Where(d => LeftoverRegex().IsMatch(Path.GetFileName(d))))
            Directory.Delete(stale, recursive: true);
        foreach (var stale in Directory.EnumerateFiles(runDir).Where(f => LeftoverRegex().IsMatch(Path.GetFileName(f))))
            File.Delete(stale);
        foreach (var killed in Directory.EnumerateDirectories(runDir).Where(d => StepDirRegex().IsMatch(Path.GetFileName(d)) && !IsCommitted(d)))
            DeleteDirectory(killed);
    }

    /// <summary>Whether a step directory holds a commit record: a distributed manifest or a single-process trainer state.</summary>
    public static bool IsCommitted(string dir) =>
        File.Exists(Path.Combine(dir, DistCheckpointManifest.FileName)) || File.Exists(Path.Combine(dir, StateFileName));

    public string StepDir(long step) => Path.Combine(RunDir, DirName(step));

    /// <summary>Before a distributed save of <paramref name="step"/> (one process): removes the step's directory if a
    /// previous save left one (uncommitting it first), and creates it empty.</summary>
    public string PrepareInPlace(long step)
    {
        var dir = StepDir(step);
        if (Directory.Exists(dir)) DeleteDirectory(dir);
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>After the manifest of a distributed save is written (one process): `latest` and pruning as Save does.</summary>
    public CheckpointInfo CommitInPlace(TrainerState state)
    {
        var dir = StepDir(state.Step);
        AtomicFile.WriteAllText(Path.Combine(RunDir, LatestFileName), DirName(state.Step) + "\n");
        Prune(keep: dir);
        return new CheckpointInfo(state.Step, dir, state);
    }

    public static string DirName(long step) => $"step-{step:D6}";

    /// <summary>Saves checkpoint <c>state.Step</c>: <paramref name="writeFiles"/> gets the (temporary) directory
    /// to write model/optimizer files into. Returns the final checkpoint. If the callback throws, nothing changes.</summary>
    public CheckpointInfo Save(TrainerState state, Action<string> writeFiles)
    {
        var final = Path.Combine(RunDir, DirName(state.Step));
        var tmp = $"{final}.tmp-{Guid.NewGuid():N}";
        Directory.CreateDirectory(tmp);
        try
        {
            writeFiles(tmp);
            AtomicFile.WriteAllText(Path.Combine(tmp, StateFileName), state.ToJson());
            if (Directory.Exists(final)) DeleteDirectory(final);
            Directory.Move(tmp, final);
        }
        catch
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
            throw;
        }
        AtomicFile.WriteAllText(Path.Combine(RunDir, LatestFileName), DirName(state.Step) + "\n");
        Prune(keep: final);
        return new CheckpointInfo(state.Step, final, state);
    }

    /// <summary>Complete checkpoints, oldest first.</summary>
    public IReadOnlyList<CheckpointInfo> List()
    {
        var result = new List<CheckpointInfo>();
        foreach (var dir in Directory.EnumerateDirectories(RunDir))
        {
            var m = StepDirRegex().Match(Path.GetFileName(dir));
            if (m.Success && TryRead(dir, long.Parse(m.Groups[1].Value)) is { } info) result.Add(info);
        }
        return result.OrderBy(c => c.Step).ToList();
    }

    /// <summary>The checkpoint to resume from: the one `latest` names if complete, else the highest complete step.</summary>
    public CheckpointInfo? FindLatest()
    {
        var pointer = Path.Combine(RunDir, LatestFileName);
        if (File.Exists(pointer))
        {
            var name = File.ReadAllText(pointer).Trim();
            var m = StepDirRegex().Match(name);
            if (m.Success && TryRead(Path.Combine(RunDir, name), long.Parse(m.Groups[1].Value)) is { } info) return info;
        }
        return List().LastOrDefault();
    }

    private static CheckpointInfo? TryRead(string dir, long step)
    {
        if (File.Exists(Path.Combine(dir, DistCheckpointManifest.FileName)))
        {
            try
            {
                var run = DistCheckpointManifest.Read(dir).Run;
                var state = run[TrainerStateKey] is JsonObject o ? TrainerState.FromJson(o.ToJsonString(), Path.Combine(dir, DistCheckpointManifest.FileName)) : null;
                return state?.Step == step ? new CheckpointInfo(step, dir, state) : null;
            }
            catch (Exception e) when (e is InvalidDataException or System.Text.Json.JsonException)
            {
                return null;
            }
        }
        var file = Path.Combine(dir, StateFileName);
        if (!File.Exists(file)) return null;
        try
        {
            var state = TrainerState.FromJson(File.ReadAllText(file), file);
            return state.Step == step ? new CheckpointInfo(step, dir, state) : null;
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    private void Prune(string keep)
    {
        var all = List();
        foreach (var old in all.Take(Math.Max(0, all.Count - _keepLast)))
            if (old.Directory != keep) DeleteDirectory(old.Directory);
    }

    /// <summary>Renames first so a crash mid-delete never leaves a half directory that looks like a checkpoint.</summary>
    private static void DeleteDirectory(string dir)
    {
        var doomed = $"{dir}.deleting-{Guid.NewGuid():N}";
        Directory.Move(dir, doomed);
        Directory.Delete(doomed, recursive: true);
    }

    [GeneratedRegex(@"^step-(\d+)$")]
    private static partial Regex StepDirRegex();

    [GeneratedRegex(@"^(step-\d+\.(tmp|deleting)|\..+\.(tmp|old)|.+\.tmp)-[0-9a-f]{32}$")]
    private static partial Regex LeftoverRegex();
}
