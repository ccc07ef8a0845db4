// The MPI process group on 2 and 4 ranks (every collective against hand-computed values, inside the worker), data
// parallel + ZeRO 0/1/2 against one process's AdamW (losses and weights to 1e-6 relative; the worker also checks
// that skipping the gradient sync breaks the match), and failure handling: a crashing rank or a hanging rank makes
// mpirun exit non-zero (the hang within the collective timeout, with a message naming it). Expert parallel MoE (the
// worker's ep scenario) against the single-process MoE; the expert-parallel model (ep-model) against the single-process
// model: export, gradients, optimizer steps with ZeRO 0/1/2, optimizer state and routing-bias updates. The gradient
// all-reduce overlapped with backward (overlap) against the same buckets reduced after backward, bit for bit.
namespace PostTrain.Training.Tests.Distributed;

[Collection(MpiCollection.Name)]
public sealed class CollectiveTests
{
    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void EveryCollectiveGivesTheHandComputedResult(int ranks)
    {
        var (rc, output) = MpiRun.Run(ranks, MpiRun.Worker, ["collectives"]);
        Assert.True(rc == 0, output);
        foreach (var op in new[] { "allreduce", "async allreduce", "broadcast", "allgatherv", "reducescatterv", "alltoallv", "split", "barrier" })
            Assert.Equal(ranks, CountLines(output, "ok " + op));
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void DataParallelAndZeroOneTwoEqualOneProcessAdamW(int ranks)
    {
        var (rc, output) = MpiRun.Run(ranks, MpiRun.Worker, ["zero"]);
        Assert.True(rc == 0, output);
        foreach (var stage in new[] { "zero0", "zero1", "zero2", "unsynced differs" })
            Assert.Equal(ranks, CountLines(output, "ok " + stage));
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void OverlappedGradientSyncStartsBucketsDuringBackwardAndEqualsTheSyncAfterIt(int ranks)
    {
        // the worker checks the layers' gradients are final at their signal, and losses and weights bitwise equal to
        // the same buckets reduced after backward (ZeRO 0 and 1, gradient accumulation 2, ranks with more backward
        // passes than others), with buckets started in backward
        var (rc, output) = MpiRun.Run(ranks, MpiRun.Worker, ["overlap"]);
        Assert.True(rc == 0, output);
        Assert.Equal(ranks, CountLines(output, "ok ready at signal"));
        foreach (var c in new[] { "zero0 accumulation1:", "zero1 accumulation1:", "zero0 accumulation2:", "zero0 accumulation1 rank0passes2:", "zero0 accumulation2 rank0passes3:" })
            Assert.Equal(ranks, CountLines(output, $"ok overlap {c}"));
    }

    [Theory]
    [InlineData(2, new[] { "ep2", "ep2-limited1" })]
    [InlineData(4, new[] { "ep4", "ep4-limited2", "ep2xdp2", "ep2xdp2-limited1" })]
    public void ExpertParallelMoeEqualsOneProcessMoe(int ranks, string[] cases)
    {
        // outputs, input/router/shared/expert gradients (1e-6) and global loads (exact), device-limited routing on/off
        var (rc, output) = MpiRun.Run(ranks, MpiRun.Worker, ["ep"]);
        Assert.True(rc == 0, output);
        foreach (var c in cases) Assert.Equal(ranks, CountLines(output, $"ok {c} "));
    }

    [Theory]
    [InlineData(2, new[] { "model-dp2", "model-ep2", "model-ep2-limited1" })]
    [InlineData(4, new[] { "model-dp4", "model-ep4", "model-ep4-limited2", "model-ep2xdp2", "model-ep2xdp2-limited1" })]
    public void ExpertParallelModelTrainsAsOneProcess(int ranks, string[] cases)
    {
        var (rc, output) = MpiRun.Run(ranks, MpiRun.Worker, ["ep-model"], limitSeconds: 300);
        Assert.True(rc == 0, output);
        foreach (var c in cases) Assert.Equal(ranks, CountLines(output, $"ok {c} "));
    }

    [Fact]
    public void ARankThatCrashesEndsTheJobNonZero()
    {
        var (rc, output) = MpiRun.Run(2, MpiRun.Worker, ["crash"]);
        Assert.NotEqual(0, rc);
        Assert.Contains("rank 1 fails on purpose", output);
        Assert.DoesNotContain("rank 0/2: done", output);
    }

    [Fact]
    public void ARankThatHangsEndsTheJobNonZeroWithinTheTimeout()
    {
        var (rc, output) = MpiRun.Run(2, MpiRun.Worker, ["hang"], new Dictionary<string, string> { ["POSTTRAIN_DIST_TIMEOUT"] = "5" }, limitSeconds: 120);
        Assert.NotEqual(0, rc);
        Assert.Contains("Barrier did not complete within 5 s", output);
    }

    private static int CountLines(string output, string prefix) =>
        output.Split('\n').Count(l => l.TrimStart('\u001b', '[', '?', '1', 'h', '=').StartsWith(prefix, StringComparison.Ordinal));
}
