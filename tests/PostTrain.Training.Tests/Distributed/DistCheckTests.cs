// `posttrain dist-check`: every collective on 1, 2 and 4 CPU ranks (Open MPI) matches its exact expected values; the
// check itself catches a wrong collective (a group whose all-reduce or gather is off); the NCCL engine on the CPU and
// unknown engines are clear usage errors; distributed.backend binds and names its key on a bad value.
using PostTrain.Core.Distributed;
using PostTrain.Training.Recipes;
using static TorchSharp.torch;

namespace PostTrain.Training.Tests.Distributed;

[Collection(MpiCollection.Name)]
public sealed class DistCheckTests
{
    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void EveryCollectiveIsExactOnCpuRanks(int ranks)
    {
        var (rc, output) = MpiRun.Run(ranks, MpiRun.Cli, ["dist-check", "--device", "cpu", "--bandwidth-mb", "1"]);
        Assert.True(rc == 0, output);
        Assert.Contains($"dist-check: {ranks} rank(s), engine mpi, tensors on cpu", output);
        Assert.DoesNotContain("FAIL", output);
        Assert.Matches($@"all \d+ checks passed on {ranks} rank\(s\)", output);
        Assert.Contains("all_to_all_v", output);
        Assert.Contains("busbw", output);
    }

    [Fact]
    public void OneProcessChecksTheSingleProcessGroup()
    {
        var (rc, output) = MpiRun.RunSingle(MpiRun.Cli, ["dist-check", "--device", "cpu"]);
        Assert.True(rc == 0, output);
        Assert.Contains("1 rank(s), engine single process", output);
    }

    [Fact]
    public void NcclOnTheCpuAndUnknownEnginesAreUsageErrors()
    {
        var (rc, output) = MpiRun.RunSingle(MpiRun.Cli, ["dist-check", "--device", "cpu", "--backend", "gloo"]);
        Assert.Equal(2, rc);
        Assert.Contains("--backend: 'gloo' is not auto, mpi or nccl", output);
        Assert.Throws<InvalidOperationException>(() => Dist.ForDevice(CPU, DistBackend.Nccl));
    }

    [Fact]
    public void TheCheckCatchesWrongCollectives()
    {
        var results = CollectiveCheck.Run(new Faulty(), CPU);
        var failed = results.Where(r => !r.Ok).Select(r => r.Name).ToHashSet();
        Assert.Contains("all_reduce sum float32", failed);
        Assert.Contains("all_gather_v (uneven)", failed);
        Assert.Contains("all_to_all_v", failed);
        Assert.DoesNotContain("broadcast float32", failed);
        Assert.Contains("element 0: 1 != 0", results.Single(r => r.Name == "all_reduce sum float32").Detail);
    }

    [Fact]
    public void DistributedBackendBindsAndNamesItsKey()
    {
        Assert.Equal(DistBackend.Nccl, new DistributedConfig { Backend = "NCCL" }.EngineBackend);
        Assert.Equal(DistBackend.Auto, new DistributedConfig().EngineBackend);
        var e = Assert.Throws<RecipeConfigException>(() => new DistributedConfig { Backend = "tcp" }.EngineBackend);
        Assert.Contains("distributed.backend: 'tcp'", e.Message);
    }

    /// <summary>One rank whose all-reduce adds one, whose gather returns an extra row and whose all-to-all adds one.</summary>
    private sealed class Faulty : ProcessGroup
    {
        public override int Rank => 0;
        public override int Size => 1;
        public override void AllReduce(Tensor t, ReduceOp op = ReduceOp.Sum) => t.add_(1);
        public override void Broadcast(Tensor t, int root) { }
        public override Tensor AllGatherV(Tensor input, long[] rows) => zeros(input.shape[0] + 1, 3);
        public override Tensor ReduceScatterV(Tensor input, long[] rows) => input.clone();
        public override Tensor AllToAllV(Tensor input, long[] sendRows, long[] recvRows) => input.add(1);
        public override void Barrier() { }
        public override ProcessGroup Split(int color, int key) => this;
        public override void Abort(int code, string message) => throw new InvalidOperationException(message);
        public override void Dispose() { }
    }
}
