// ExpertGatherStream and PretrainedModel.SaveStreamed in one process: rank 0 of a 2-rank expert-parallel group whose
// other rank is simulated (its rows of each expert stack come from a one-process model, picked by the stack the writer
// announced), so the streamed directory can be compared byte for byte with the one-process Save of the same weights,
// including across shard boundaries; and the protocol itself: an announcement before every gather, -1 at the end, a
// serving rank joining exactly the announced gathers, the writer's host cache never above its capacity.
using PostTrain.Core.Checkpoints;
using PostTrain.Core.Distributed;
using PostTrain.Core.Model;
using static TorchSharp.torch;

namespace PostTrain.Core.Tests.Checkpoints;

public sealed class ExpertStreamedSaveTests
{
    // Rank `rank` of a two-rank group. Broadcast from rank 0: the writer's announcement is recorded; a serving rank
    // receives the next scripted value. AllGatherV: this rank's rows and the peer's (peerRows of the stack index last
    // announced), in rank order.
    private sealed class SimulatedPair(int rank, Func<long, Tensor> peerRows, Queue<long>? script = null) : ProcessGroup
    {
        private long current = long.MinValue;
        public List<long> Announced { get; } = [];
        public int GatherCalls { get; private set; }
        public override int Rank => rank;
        public override int Size => 2;

        public override void Broadcast(Tensor t, int root)
        {
            Assert.Equal(0, root);
            if (rank != 0) t.copy_(tensor(new[] { script!.Dequeue() }));
            current = t.item<long>();
            Announced.Add(current);
        }

        public override Tensor AllGatherV(Tensor input, long[] rows)
        {
            GatherCalls++;
            Assert.True(current >= 0, "a gather without an announced stack");
            var peer = peerRows(current);
            Assert.Equal(input.shape, peer.shape);
            Assert.Equal([input.shape[0], input.shape[0]], rows);
            return rank == 0 ? cat([input, peer]) : cat([peer, input]);
        }

        public override void AllReduce(Tensor t, ReduceOp op = ReduceOp.Sum) => throw new NotSupportedException();
        public override Tensor ReduceScatterV(Tensor input, long[] rows) => throw new NotSupportedException();
        public override Tensor AllToAllV(Tensor input, long[] sendRows, long[] recvRows) => throw new NotSupportedException();
        public override void Barrier() => throw new NotSupportedException();
        public override ProcessGroup Split(int color, int key) => throw new NotSupportedException();
        public override void Abort(int code, string message) => throw new InvalidOperationException(message);
        public override void Dispose() { }
    }

    // 11 layers: the writer's code-point order puts model.layers.10 before model.layers.2, the shard planner's natural
    // order after, so a layer whose experts straddle two shard files is finished after other layers in the second file.
    [Theory]
    [InlineData(2, 1_000_000_000L, false)]   // one file
    [InlineData(2, 60_000L, false)]          // shards
    [InlineData(11, 9_000L, false)]
    [InlineData(11, 150_000L, true)]         // a layer straddling two files finishes after another layer: gathered again
    public void TheStreamedDirectoryIsTheOneProcessDirectoryByteForByte(int layers, long maxShardBytes, bool regathers)
    {
        using var dir = new TempDir();
        var config = BuiltinModels.Micro() with { NumHiddenLayers = layers };
        using var one = new DeepSeekForCausalLM(config);
        one.InitWeights(seed: 7);
        PretrainedModel.Save(one, dir.File("one"), maxShardBytes: maxShardBytes);

        var oneState = one.state_dict();
        string[] names = [.. oneState.Keys.Where(ExpertParallelCheckpoint.IsExpert).OrderBy(n => n, StringComparer.Ordinal)];
        Assert.Equal(3 * layers, names.Length);   // the MoE layers 1.. and the MTP layer: gate, up, down each
        var pair = new SimulatedPair(0, index => oneState[names[index]].narrow(0, 2, 2));
        using var ep = new ExpertParallelism(pair, SingleProcessGroup.Instance, 2);
        using var rank0 = new DeepSeekForCausalLM(config, expertParallel: ep);
        using (var tensors = CheckpointTensors.Open(dir.File("one")))
            HfStateDict.Load(rank0, tensors.Shapes, tensors.Read, dir.File("one"));   // experts 0 and 1 of 4
        Assert.Equal(2, rank0.state_dict()[names[0]].shape[0]);

        var stream = new ExpertGatherStream(pair, ExpertParallelCheckpoint.LocalStacks(rank0));
        PretrainedModel.SaveStreamed(rank0, dir.File("streamed"), stream, maxShardBytes: maxShardBytes);
        stream.Finish();

        var files = Directory.GetFiles(dir.File("one")).Select(Path.GetFileName).Order().ToArray();
        Assert.Equal(files, Directory.GetFiles(dir.File("streamed")).Select(Path.GetFileName).Order().ToArray());
        if (maxShardBytes < 1_000_000) Assert.Contains("model.safetensors.index.json", files);
        foreach (var f in files)
            Assert.True(File.ReadAllBytes(Path.Combine(dir.File("one"), f!)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(dir.File("streamed"), f!))), f);

        Assert.InRange(stream.MostHeld, 1, stream.Capacity);
        if (regathers) Assert.True(stream.Gathers > names.Length, $"{stream.Gathers} gathers of {names.Length} stacks");
        else Assert.Equal(names.Length, stream.Gathers);
        Assert.Equal(-1, pair.Announced[^1]);
        Assert.Equal(stream.Gathers, pair.GatherCalls);
        Assert.Equal(pair.GatherCalls, pair.Announced.Count - 1);
    }

    [Fact]
    public void AServingRankJoinsEveryAnnouncedGatherUntilDone()
    {
        var stacks = new Dictionary<string, Tensor> { ["b"] = ones(1, 3), ["a"] = zeros(1, 3), ["c"] = full(1, 3, 2f) };
        var pair = new SimulatedPair(1, _ => ones(1, 3), new Queue<long>([2, 0, 2, -1]));
        using var stream = new ExpertGatherStream(pair, stacks);
        Assert.False(stream.IsWriter);
        Assert.Throws<InvalidOperationException>(() => stream.Get("a"));
        stream.Serve();
        Assert.Equal([2L, 0, 2, -1], pair.Announced);
        Assert.Equal(3, pair.GatherCalls);
        Assert.Equal(0, stream.Gathers);   // nothing kept on a serving rank
    }

    [Fact]
    public void TheWriterKeepsTheMostRecentlyUsedStacksUpToItsCapacity()
    {
        var stacks = new[] { "a", "b", "c" }.ToDictionary(n => n, n => full(1, 2, n[0] - 'a' + 1f));
        var pair = new SimulatedPair(0, i => full(1, 2, 10f * (i + 1)));
        var stream = new ExpertGatherStream(pair, stacks, capacity: 2);
        Assert.Throws<InvalidOperationException>(() => stream.Serve());
        var a = stream.Get("a");
        Assert.Equal(new[] { 1f, 1, 10, 10 }, a.data<float>().ToArray());   // own rows, then the peer's
        stream.Get("b");
        Assert.Same(a, stream.Get("a"));   // held: no gather
        stream.Get("c");                    // evicts b, the least recently used
        Assert.Same(a, stream.Get("a"));
        Assert.Equal(3, stream.Gathers);
        stream.Get("b");                    // gathered again
        Assert.Equal(4, stream.Gathers);
        Assert.Equal(2, stream.MostHeld);
        Assert.Throws<KeyNotFoundException>(() => stream.Get("d"));
        stream.Finish();
        Assert.Equal([0L, 1, 2, 1, -1], pair.Announced);
        Assert.Throws<InvalidOperationException>(() => stream.Get("a"));
    }
}
