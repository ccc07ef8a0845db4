// Checkpoint directories: atomic save, latest pointer, pruning, resume lookup and crash safety.
using PostTrain.Training.Infra;

namespace PostTrain.Training.Tests.Infra;

[Collection(PostTrain.Training.Tests.Recipes.TorchGlobalRngCollection.Name)]
public sealed class CheckpointManagerTests
{
    private static TrainerState State(long step) => new()
    {
        Step = step, Epoch = 1, DataPosition = step * 8, TokensSeen = step * 1000,
        Rng = new Rng(step + 1).State, LearningRate = 1e-4, Extra = { ["note"] = $"s{step}" },
    };

    private static Action<string> Write(string content) => dir => File.WriteAllText(Path.Combine(dir, "model.bin"), content);

    private static string[] Entries(string dir) => Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).Order().ToArray()!;

    [Fact]
    public void Saves_step_directory_with_files_state_and_latest_pointer()
    {
        using var tmp = new TempDir();
        var m = new CheckpointManager(tmp.Path, keepLast: 3);
        var info = m.Save(State(120), Write("weights-120"));

        Assert.Equal(tmp["step-000120"], info.Directory);
        Assert.Equal(["latest", "step-000120"], Entries(tmp.Path));
        Assert.Equal(["model.bin", "trainer_state.json"], Entries(info.Directory));
        Assert.Equal("step-000120\n", File.ReadAllText(tmp["latest"]));
        var json = File.ReadAllText(Path.Combine(info.Directory, "trainer_state.json"));
        Assert.Contains("\"data_position\": 960", json);
        Assert.Contains("\"tokens_seen\": 120000", json);

        var latest = new CheckpointManager(tmp.Path, 3).FindLatest()!;
        Assert.Equal(120, latest.Step);
        Assert.Equal(960, latest.State.DataPosition);
        Assert.Equal(new Rng(121).State, latest.State.Rng);
        Assert.Equal("s120", latest.State.Extra["note"]);
    }

    [Fact]
    public void Prunes_to_keep_last()
    {
        using var tmp = new TempDir();
        var m = new CheckpointManager(tmp.Path, keepLast: 2);
        foreach (var s in new[] { 10, 20, 30, 40 }) m.Save(State(s), Write($"w{s}"));
        Assert.Equal(["latest", "step-000030", "step-000040"], Entries(tmp.Path));
        Assert.Equal([30L, 40L], m.List().Select(c => c.Step));
        Assert.Equal("w40", File.ReadAllText(Path.Combine(m.FindLatest()!.Directory, "model.bin")));
    }

    [Fact]
    public void Failure_inside_the_save_callback_leaves_the_previous_checkpoint_intact()
    {
        using var tmp = new TempDir();
        var m = new CheckpointManager(tmp.Path, keepLast: 1);
        m.Save(State(10), Write("good"));

        var ex = Assert.Throws<IOException>(() => m.Save(State(20), dir =>
        {
            File.WriteAllText(Path.Combine(dir, "model.bin"), "half");
            throw new IOException("disk full");
        }));
        Assert.Equal("disk full", ex.Message);
        Assert.Equal(["latest", "step-000010"], Entries(tmp.Path)); // no partial dir, keep_last did not prune the good one
        Assert.Equal("step-000010\n", File.ReadAllText(tmp["latest"]));
        var latest = m.FindLatest()!;
        Assert.Equal(10, latest.Step);
        Assert.Equal("good", File.ReadAllText(Path.Combine(latest.Directory, "model.bin")));
    }

    [Fact]
    public void Leftovers_of_a_killed_save_are_not_checkpoints_and_are_cleaned_up()
    {
        using var tmp = new TempDir();
        new CheckpointManager(tmp.Path, 3).Save(State(10), Write("good"));
        // A process killed mid-save leaves a temp dir (even with a state file) and maybe a step dir without one.
        var killed = tmp[$"step-000020.tmp-{Guid.NewGuid():N}"];
        Directory.CreateDirectory(killed);
        File.WriteAllText(Path.Combine(killed, "trainer_state.json"), State(20).ToJson());
        Directory.CreateDirectory(tmp["step-000030"]);
        Directory.CreateDirectory(tmp["step-000040"]);
        File.WriteAllText(Path.Combine(tmp["step-000040"], "trainer_state.json"), "{ truncated");

        var m = new CheckpointManager(tmp.Path, 3);
        Assert.False(Directory.Exists(killed));
        Assert.Equal([10L], m.List().Select(c => c.Step));
        Assert.Equal(10, m.FindLatest()!.Step);
    }

    [Fact]
    public void Latest_falls_back_to_the_highest_complete_step_when_the_pointer_is_stale()
    {
        using var tmp = new TempDir();
        var m = new CheckpointManager(tmp.Path, 5);
        Assert.Null(m.FindLatest());
        m.Save(State(10), Write("a"));
        m.Save(State(20), Write("b"));
        File.WriteAllText(tmp["latest"], "step-000099\n");
        Assert.Equal(20, m.FindLatest()!.Step);
        File.WriteAllText(tmp["latest"], "step-000010\n");
        Assert.Equal(10, m.FindLatest()!.Step);
    }

    [Fact]
    public void Saving_the_same_step_again_replaces_it()
    {
        using var tmp = new TempDir();
        var m = new CheckpointManager(tmp.Path, 3);
        m.Save(State(10), Write("first"));
        m.Save(State(10) with { TokensSeen = 5 }, Write("second"));
        var latest = m.FindLatest()!;
        Assert.Equal("second", File.ReadAllText(Path.Combine(latest.Directory, "model.bin")));
        Assert.Equal(5, latest.State.TokensSeen);
        Assert.Single(m.List());
    }

    [Fact]
    public void Torch_rng_state_round_trips()
    {
        var saved = TorchRng.Capture();
        using var a = TorchSharp.torch.rand(5);
        TorchRng.Restore(saved);
        using var b = TorchSharp.torch.rand(5);
        Assert.Equal(a.data<float>().ToArray(), b.data<float>().ToArray());
    }
}
