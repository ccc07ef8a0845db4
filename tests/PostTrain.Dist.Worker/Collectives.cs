// Every ProcessGroup collective on values each rank computes by hand: rank r contributes r + 1 (and rows of
// value 10 r + i), so sums, maxima, gathers and exchanges have closed forms.
using PostTrain.Core.Distributed;
using static TorchSharp.torch;

namespace PostTrain.Tests.DistWorker;

internal static class Collectives
{
    public static void Run(ProcessGroup g)
    {
        int n = g.Size, r = g.Rank;
        using var scope = NewDisposeScope();

        var x = full(3, 2, r + 1.0f);
        g.AllReduce(x);
        Check.Equal(x.reshape(-1).data<float>().ToArray(), Enumerable.Repeat(n * (n + 1) / 2f, 6).ToArray(), "AllReduce sum float32");
        var m = tensor(new long[] { r, -r });
        g.AllReduce(m, ReduceOp.Max);
        Check.Equal(m.data<long>().ToArray(), [n - 1, 0], "AllReduce max int64");
        var h = full(4, r + 1.0f, dtype: ScalarType.BFloat16);
        g.AllReduce(h);
        Check.Equal(h.to(ScalarType.Float32).data<float>().ToArray(), Enumerable.Repeat(n * (n + 1) / 2f, 4).ToArray(), "AllReduce sum bfloat16");
        Console.WriteLine("ok allreduce");

        // started ones: in place (fp32), staged (bf16, a non-contiguous view); a blocking call between; waited last first
        var a1 = full(5, r + 1.0f);
        var a2 = full(3, r + 1.0f, dtype: ScalarType.BFloat16);
        var a3 = full(4, 2, r + 1.0, dtype: ScalarType.Float64).t();
        var h1 = g.AllReduceAsync(a1);
        var h2 = g.AllReduceAsync(a2);
        var h3 = g.AllReduceAsync(a3, ReduceOp.Max);
        var between = tensor(new long[] { r });
        g.AllReduce(between);
        var polling = System.Diagnostics.Stopwatch.StartNew();
        while (!h1.Test())                                       // one poll at a time completes it too
            if (polling.Elapsed > TimeSpan.FromSeconds(60)) throw new InvalidOperationException("AllReduceAsync: Test() never reports completion");
        h3.Wait(); h2.Wait(); h1.Wait(); h1.Wait();
        if (!h1.Test() || !CollectiveHandle.Completed.Test()) throw new InvalidOperationException("a waited handle does not test as done");
        Check.Equal(a1.data<float>().ToArray(), Enumerable.Repeat(n * (n + 1) / 2f, 5).ToArray(), "AllReduceAsync sum float32");
        Check.Equal(a2.to(ScalarType.Float32).data<float>().ToArray(), Enumerable.Repeat(n * (n + 1) / 2f, 3).ToArray(), "AllReduceAsync sum bfloat16");
        Check.Equal(a3.contiguous().reshape(-1).data<double>().ToArray(), Enumerable.Repeat((double)n, 8).ToArray(), "AllReduceAsync max of a view");
        Check.Equal(between.data<long>().ToArray(), [n * (n - 1) / 2], "AllReduce between started ones");
        Console.WriteLine("ok async allreduce");

        var b = r == n - 1 ? arange(5, dtype: ScalarType.Float64) : zeros(5, dtype: ScalarType.Float64);
        g.Broadcast(b, n - 1);
        Check.Equal(b.data<double>().ToArray(), [0, 1, 2, 3, 4], "Broadcast");
        Console.WriteLine("ok broadcast");

        // rank q holds q + 1 rows of width 2, row i = (10 q + i, -(10 q + i))
        var rows = Enumerable.Range(0, n).Select(q => (long)q + 1).ToArray();
        var mine = Rows(r, r + 1);
        var gathered = g.AllGatherV(mine, rows);
        var expected = cat(Enumerable.Range(0, n).Select(q => Rows(q, q + 1)).ToList(), 0);
        Check.Equal(gathered.reshape(-1).data<float>().ToArray(), expected.reshape(-1).data<float>().ToArray(), "AllGatherV");
        Check.Equal(g.AllGather(7L * r), Enumerable.Range(0, n).Select(q => 7L * q).ToArray(), "AllGather");
        Console.WriteLine("ok allgatherv");

        // every rank sends the same (sum rows) x 2 tensor times (r + 1): rank q gets its rows summed, times n(n+1)/2
        var all = expected * (r + 1);
        var part = g.ReduceScatterV(all, rows);
        var want = Rows(r, r + 1) * (n * (n + 1) / 2f);
        Check.Equal(part.reshape(-1).data<float>().ToArray(), want.reshape(-1).data<float>().ToArray(), "ReduceScatterV");
        Console.WriteLine("ok reducescatterv");

        // rank r sends (r + q) % 3 rows to rank q, rows tagged 100 r + q
        long Count(int from, int to) => (from + to) % 3;
        var send = Enumerable.Range(0, n).Select(q => Count(r, q)).ToArray();
        var recv = Enumerable.Range(0, n).Select(q => Count(q, r)).ToArray();
        var outgoing = cat(Enumerable.Range(0, n).Select(q => full(Count(r, q), 3, 100f * r + q)).ToList(), 0);
        var incoming = g.AllToAllV(outgoing, send, recv);
        var wantIn = cat(Enumerable.Range(0, n).Select(q => full(Count(q, r), 3, 100f * q + r)).ToList(), 0);
        Check.Equal(incoming.reshape(-1).data<float>().ToArray(), wantIn.reshape(-1).data<float>().ToArray(), "AllToAllV");
        Console.WriteLine("ok alltoallv");

        // sub-groups: even and odd ranks
        using var sub = g.Split(r % 2, r);
        var s = full(1, 1.0f);
        sub.AllReduce(s);
        int members = Enumerable.Range(0, n).Count(q => q % 2 == r % 2);
        Check.Equal([s.item<float>(), sub.Size, sub.Rank], new float[] { members, members, r / 2 }, "Split");
        Console.WriteLine("ok split");
        g.Barrier();
        Console.WriteLine("ok barrier");
    }

    private static Tensor Rows(int q, int count) =>
        stack(Enumerable.Range(0, count).Select(i => tensor(new float[] { 10 * q + i, -(10 * q + i) })).ToList(), 0);
}
