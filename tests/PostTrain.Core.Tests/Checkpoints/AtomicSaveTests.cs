// Crash safety: a save that fails midway (simulated IO failure via the internal hook, or a tensor
// that becomes unusable mid-write) leaves the previous file/directory byte-identical and no temp
// files; a reader opening a directory while it is swapped gets one complete checkpoint.
using PostTrain.Core.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Checkpoints;

public sealed class AtomicSaveTests
{
    private static Dictionary<string, Tensor> State(float value) => new()
    {
        ["a"] = torch.full(8, value),
        ["b"] = torch.full(8, value + 1),
        ["c"] = torch.full(8, value + 2),
    };

    [Fact]
    public void FailedFileSaveKeepsThePreviousFileAndLeavesNoTemp()
    {
        using var dir = new TempDir();
        string file = dir.File("model.safetensors");
        SafeTensors.Save(file, State(1));
        byte[] before = File.ReadAllBytes(file);

        var e = Assert.Throws<IOException>(() => SafeTensors.Save(file, State(5), null,
            afterTensorWritten: name => { if (name == "b") throw new IOException("disk full (simulated)"); }));
        Assert.Contains("simulated", e.Message);
        Assert.Equal(before, File.ReadAllBytes(file));
        Assert.Equal(["model.safetensors"], dir.Entries());
    }

    [Fact]
    public void TensorFailingMidwayKeepsThePreviousFile()
    {
        using var dir = new TempDir();
        string file = dir.File("model.safetensors");
        SafeTensors.Save(file, State(1));
        byte[] before = File.ReadAllBytes(file);

        var state = State(5);
        Assert.ThrowsAny<Exception>(() => SafeTensors.Save(file, state, null, afterTensorWritten: name => { if (name == "a") state["c"].Dispose(); }));
        Assert.Equal(before, File.ReadAllBytes(file));
        Assert.Equal(["model.safetensors"], dir.Entries());
    }

    [Fact]
    public void FailedDirectorySaveKeepsThePreviousCheckpoint()
    {
        using var dir = new TempDir();
        string ckpt = Path.Combine(dir.Path, "ckpt");
        SafeTensors.SaveDirectory(ckpt, State(1), "{\"v\": 1}", new CheckpointSaveOptions { MaxShardBytes = 32 });
        var before = Directory.GetFiles(ckpt).Order().ToDictionary(f => f, File.ReadAllBytes);
        Assert.Equal(5, before.Count); // 3 shards + index + config

        var options = new CheckpointSaveOptions
        {
            MaxShardBytes = 32,
            AfterTensorWritten = name => { if (name == "c") throw new IOException("simulated failure in the last shard"); },
        };
        Assert.Throws<IOException>(() => SafeTensors.SaveDirectory(ckpt, State(5), "{\"v\": 2}", options));

        Assert.Equal(before.Keys, Directory.GetFiles(ckpt).Order());
        foreach (var (path, bytes) in before) Assert.Equal(bytes, File.ReadAllBytes(path));
        Assert.Equal(["ckpt", .. before.Keys.Select(p => Path.GetRelativePath(dir.Path, p))], dir.Entries());
    }

    [Fact]
    public void FailedFirstDirectorySaveLeavesNothing()
    {
        using var dir = new TempDir();
        string ckpt = Path.Combine(dir.Path, "fresh");
        var options = new CheckpointSaveOptions { AfterTensorWritten = _ => throw new IOException("simulated") };
        Assert.Throws<IOException>(() => SafeTensors.SaveDirectory(ckpt, State(1), null, options));
        Assert.Empty(dir.Entries());
    }

    [Fact]
    public void ReaderOpeningDuringASwapSeesOneCompleteCheckpoint()
    {
        using var dir = new TempDir();
        string ckpt = Path.Combine(dir.Path, "ckpt");
        SafeTensors.SaveSharded(ckpt, State(1), 32);
        int swaps = 0;
        SafeTensorsCheckpoint.AfterIndexReadForTest = d =>
        {
            if (swaps++ == 0) SafeTensors.SaveSharded(d, State(10), 32); // same layout, new values, swapped in mid-open
        };
        try
        {
            var loaded = SafeTensors.Load(ckpt);
            Assert.Equal(2, swaps); // first attempt saw the swap and started over
            Assert.Equal(10f, loaded["a"][0].item<float>());
            Assert.Equal(11f, loaded["b"][0].item<float>());
            Assert.Equal(12f, loaded["c"][0].item<float>());
        }
        finally
        {
            SafeTensorsCheckpoint.AfterIndexReadForTest = null;
        }
        Assert.Equal(["ckpt", "ckpt/model-00001-of-00003.safetensors", "ckpt/model-00002-of-00003.safetensors",
            "ckpt/model-00003-of-00003.safetensors", "ckpt/model.safetensors.index.json"], dir.Entries());
    }

    [Fact]
    public void ReaderGivesUpWhenTheCheckpointKeepsChanging()
    {
        using var dir = new TempDir();
        string ckpt = Path.Combine(dir.Path, "ckpt");
        SafeTensors.SaveSharded(ckpt, State(1), 32);
        int value = 1;
        SafeTensorsCheckpoint.AfterIndexReadForTest = d => SafeTensors.SaveSharded(d, State(++value), 32);
        try
        {
            var e = Assert.Throws<SafeTensorsException>(() => SafeTensors.Load(ckpt));
            Assert.Contains("changed while it was being opened", e.Message);
        }
        finally
        {
            SafeTensorsCheckpoint.AfterIndexReadForTest = null;
        }
    }

    [Fact]
    public void OpenCheckpointKeepsReadingTheFilesItValidated()
    {
        using var dir = new TempDir();
        string ckpt = Path.Combine(dir.Path, "ckpt");
        SafeTensors.SaveSharded(ckpt, State(1), 32);
        using var opened = SafeTensorsCheckpoint.Open(ckpt);
        SafeTensors.SaveSharded(ckpt, State(20), 32); // replaced (old files deleted) after opening
        using var a = opened.Read("a");
        Assert.Equal(1f, a[0].item<float>());
        Assert.Equal(20f, SafeTensors.Load(ckpt)["a"][0].item<float>());
    }
}

public sealed class AtomicExchangeTests
{
    [Fact]
    public void OnLinuxTwoDirectoriesAreExchangedInOneStep()
    {
        if (!OperatingSystem.IsLinux()) return; // the two-rename fallback is covered by the save tests elsewhere
        using var dir = new TempDir();
        string a = Path.Combine(dir.Path, "a"), b = Path.Combine(dir.Path, "b");
        Directory.CreateDirectory(a);
        Directory.CreateDirectory(b);
        File.WriteAllText(Path.Combine(a, "from-a"), "");
        File.WriteAllText(Path.Combine(b, "from-b"), "");
        Assert.True(AtomicFiles.TryExchange(a, b));
        Assert.Equal(["a", "a/from-b", "b", "b/from-a"], dir.Entries());
    }
}
