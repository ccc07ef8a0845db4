// Distributed checkpoints through the CLI (SFT quickstart, micro model, global batch 4): a run saved at N ranks and
// ZeRO stage s, resumed at M ranks and stage t, continues the uninterrupted one-process curve (per-step losses and
// final weights to 1e-6 relative, fp32). Saves at 2 and 4 ranks have rank files + manifest.json and no
// optimizer.safetensors (nothing gathered); a one-process save keeps the single-process layout. A step whose manifest
// is missing (a save killed before the commit) is not resumed from and is removed; the run resumes from the step
// before it. `posttrain consolidate` of a 4-rank checkpoint equals the one-process final model (sharded output).
using PostTrain.Core.Checkpoints;
using PostTrain.Training.Infra;

namespace PostTrain.Training.Tests.Distributed;

[Collection(MpiCollection.Name)]
public sealed class DistributedCheckpointTests(SftBaseline baseline) : IClassFixture<SftBaseline>
{
    [Theory]
    [InlineData(2, 1, 1, 0)]
    [InlineData(2, 2, 4, 1)]
    [InlineData(1, 0, 2, 2)]
    public void SavedAtNRanksResumedAtMEqualsAnUninterruptedRun(int saveRanks, int saveZero, int resumeRanks, int resumeZero)
    {
        var (refLosses, refFinal) = baseline.OneProcess;
        string dir = Path.Combine(baseline.Root, $"ckpt-{saveRanks}z{saveZero}-{resumeRanks}z{resumeZero}");
        // checkpoints at steps 2 and 3; max_steps 3 -> 5 is a config change (allowed: with 2 warmup steps the cosine LR
        // of steps 1-3 is the same)
        var (rc, output) = DataParallelSftTests.Cli(saveRanks, dir, 3, $"distributed.zero_stage={saveZero}", "checkpoint.every_n_steps=2");
        Assert.True(rc == 0, output);
        string step3 = Path.Combine(dir, "step-000003");
        AssertLayout(step3, saveRanks);

        (rc, output) = DataParallelSftTests.Cli(resumeRanks, dir, 5, $"distributed.zero_stage={resumeZero}", "checkpoint.allow_config_change=true");
        Assert.True(rc == 0, output);
        Assert.Contains($"resumed from {step3}", output);
        DataParallelSftTests.AssertClose(refLosses, DataParallelSftTests.Losses(dir));
        DataParallelSftTests.AssertSameWeights(refFinal, Path.Combine(dir, "final"));
        AssertLayout(Path.Combine(dir, "step-000005"), resumeRanks);
    }

    [Fact]
    public void AStepWithoutManifestIsIgnoredAndRemoved()
    {
        var (refLosses, refFinal) = baseline.OneProcess;
        string dir = Path.Combine(baseline.Root, "killed-save");
        var (rc, output) = DataParallelSftTests.Cli(2, dir, 3, "distributed.zero_stage=1", "checkpoint.every_n_steps=2");
        Assert.True(rc == 0, output);
        string step3 = Path.Combine(dir, "step-000003");
        File.Delete(Path.Combine(step3, DistCheckpointManifest.FileName));   // as if killed after the rank files, before the commit
        var manager = new CheckpointManager(dir, 3);                          // what a run's start does
        Assert.False(Directory.Exists(step3), "the uncommitted step directory is removed");
        Assert.Equal(2, manager.FindLatest()!.Step);                          // `latest` still names step 3: not trusted

        (rc, output) = DataParallelSftTests.Cli(2, dir, 5, "distributed.zero_stage=2", "checkpoint.allow_config_change=true");
        Assert.True(rc == 0, output);
        Assert.Contains($"resumed from {Path.Combine(dir, "step-000002")}", output);
        DataParallelSftTests.AssertClose(refLosses, DataParallelSftTests.Losses(dir));
        DataParallelSftTests.AssertSameWeights(refFinal, Path.Combine(dir, "final"));
    }

    [Fact]
    public void ConsolidateWritesTheOneProcessModel()
    {
        var (_, refFinal) = baseline.OneProcess;
        string dir = Path.Combine(baseline.Root, "consolidate");
        var (rc, output) = DataParallelSftTests.Cli(4, dir, 5, "distributed.zero_stage=2");
        Assert.True(rc == 0, output);
        string step5 = Path.Combine(dir, "step-000005"), hf = Path.Combine(dir, "hf");
        AssertLayout(step5, 4);
        (rc, output) = MpiRun.RunSingle(MpiRun.Cli, ["consolidate", step5, hf, "--max-shard-size", "200KB"]);
        Assert.True(rc == 0, output);
        Assert.Contains($"consolidated model", output);
        Assert.True(File.Exists(Path.Combine(hf, "model.safetensors.index.json")), "200KB shards: an index is written");
        DataParallelSftTests.AssertSameWeights(refFinal, hf);
        Assert.Equal(File.ReadAllText(Path.Combine(refFinal, "config.json")), File.ReadAllText(Path.Combine(hf, "config.json")));

        File.Delete(Path.Combine(step5, DistCheckpointManifest.FileName));
        (rc, output) = MpiRun.RunSingle(MpiRun.Cli, ["consolidate", step5, Path.Combine(dir, "hf2")]);
        Assert.Equal(2, rc);
        Assert.Contains("not a committed checkpoint", output);
    }

    private static void AssertLayout(string stepDir, int ranks)
    {
        Assert.True(Directory.Exists(Path.Combine(stepDir, "model")), stepDir);
        if (ranks == 1)
        {
            Assert.True(File.Exists(Path.Combine(stepDir, "optimizer.safetensors")));
            Assert.False(File.Exists(Path.Combine(stepDir, DistCheckpointManifest.FileName)));
            return;
        }
        var manifest = DistCheckpointManifest.Read(stepDir);
        Assert.Equal(ranks, manifest.WorldSize);
        Assert.False(File.Exists(Path.Combine(stepDir, "optimizer.safetensors")));
        // every rank wrote a share (the micro model has more parameters than ranks) and no entry is stored twice
        for (int r = 0; r < ranks; r++) Assert.True(File.Exists(Path.Combine(stepDir, DistCheckpointManifest.RankFileName(r, ranks))), $"rank {r}'s file");
        Assert.All(manifest.Tensors, kv => Assert.Single(kv.Value));
        var stored = Enumerable.Range(0, ranks).SelectMany(r => SafeTensors.ReadHeader(Path.Combine(stepDir, DistCheckpointManifest.RankFileName(r, ranks))).Keys).ToList();
        Assert.Equal(manifest.Tensors.Keys.Order(StringComparer.Ordinal), stored.Order(StringComparer.Ordinal));
    }
}

/// <summary>Pieces written by N ranks read back at M (the worker checks every slice against hand-made tensors).</summary>
[Collection(MpiCollection.Name)]
public sealed class DistributedCheckpointSliceTests
{
    [Theory]
    [InlineData(2, 4)]
    [InlineData(2, 1)]
    [InlineData(4, 2)]
    public void PiecesSavedAtNRanksReadAtM(int saveRanks, int loadRanks)
    {
        string dir = Path.Combine(Path.GetTempPath(), "posttrain-dist-ckpt-" + Guid.NewGuid().ToString("N"));
        try
        {
            var (rc, output) = MpiRun.Run(saveRanks, MpiRun.Worker, ["ckpt-save", dir]);
            Assert.True(rc == 0, output);
            Assert.True(File.Exists(Path.Combine(dir, DistCheckpointManifest.FileName)), output);
            (rc, output) = loadRanks == 1 ? MpiRun.RunSingle(MpiRun.Worker, ["ckpt-load", dir]) : MpiRun.Run(loadRanks, MpiRun.Worker, ["ckpt-load", dir]);
            Assert.True(rc == 0, output);
            Assert.Equal(loadRanks, output.Split('\n').Count(l => l.Contains($"ok ckpt-load rank") && l.Contains($"from {saveRanks} ranks")));
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
        }
    }
}
