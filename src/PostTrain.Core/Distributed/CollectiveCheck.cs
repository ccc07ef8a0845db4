// A self-check of a process group (`posttrain dist-check`): every collective PostTrain uses, run on the chosen device
// with inputs that are a known function of the rank, so each rank computes every rank's input and hence the exact
// expected result by hand-rolled host loops (no collective involved), then compares. Uneven row splits (including a
// rank with no rows), 16-bit floats, sub-groups (Split) and host arrays are covered. A bandwidth probe times an
// all-reduce (informational: algorithm bandwidth = bytes / time, bus bandwidth = 2 (P-1)/P times that, as nccl-tests).
using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Distributed;

public sealed record CollectiveResult(string Name, bool Ok, string Detail);

public static class CollectiveCheck
{
    /// <summary>Runs every check on <paramref name="group"/> with tensors on <paramref name="device"/>.</summary>
    public static IReadOnlyList<CollectiveResult> Run(ProcessGroup group, Device device)
    {
        var results = new List<CollectiveResult>();
        int P = group.Size, R = group.Rank;
        void Add(string name, Tensor actual, float[] expected)
        {
            using var host = actual.to(ScalarType.Float32, CPU).contiguous();
            var got = host.numel() == 0 ? [] : host.data<float>().ToArray();   // the accessor throws on empty tensors
            bool ok = got.Length == expected.Length && got.Zip(expected).All(p => p.First == p.Second);
            int bad = got.Length == expected.Length ? Enumerable.Range(0, got.Length).FirstOrDefault(i => got[i] != expected[i], -1) : -2;
            results.Add(new(name, ok, ok ? $"{got.Length} values exact"
                : bad == -2 ? $"{got.Length} values, expected {expected.Length}" : $"element {bad}: {got[bad]} != {expected[bad]}"));
        }

        // AllReduce: rank r holds (r + 1) i + r (bf16: i + r, exact up to 256); sum, max and min are exact.
        foreach (var (dtype, name) in new[] { (ScalarType.Float32, "float32"), (ScalarType.BFloat16, "bfloat16"), (ScalarType.Int64, "int64") })
            foreach (var op in new[] { ReduceOp.Sum, ReduceOp.Max, ReduceOp.Min })
            {
                bool bf16 = dtype == ScalarType.BFloat16;
                int len = bf16 ? 16 : 1000;
                Func<int, int, long> value = bf16 ? (i, r) => i + r : (i, r) => (r + 1) * i + r;
                using var t = Filled(len, i => value(i, R), dtype, device);
                group.AllReduce(t, op);
                var expect = Enumerable.Range(0, len).Select(i =>
                {
                    var each = Enumerable.Range(0, P).Select(r => (float)value(i, r));
                    return op == ReduceOp.Sum ? each.Sum() : op == ReduceOp.Max ? each.Max() : each.Min();
                }).ToArray();
                Add($"all_reduce {op.ToString().ToLowerInvariant()} {name}", t, expect);
            }

        // Broadcast from the last rank.
        foreach (var (dtype, name) in new[] { (ScalarType.Float32, "float32"), (ScalarType.BFloat16, "bfloat16") })
        {
            using var t = Filled(100, i => R * 16 + i % 16, dtype, device);     // exact in bf16 for up to 15 ranks
            group.Broadcast(t, P - 1);
            Add($"broadcast {name}", t, Enumerable.Range(0, 100).Select(i => (float)((P - 1) * 16 + i % 16)).ToArray());
        }

        // AllGatherV: rank r contributes r rows (rank 0 none) of 3 values r*100 + row*3 + col.
        long[] gatherRows = Enumerable.Range(0, P).Select(r => (long)r).ToArray();
        using (var mine = Block(R, 3, (row, col) => R * 100 + row * 3 + col, device))
        using (var all = group.AllGatherV(mine, gatherRows))
            Add("all_gather_v (uneven)", all, Enumerable.Range(0, P).SelectMany(r =>
                Enumerable.Range(0, r * 3).Select(k => (float)(r * 100 + k))).ToArray());

        // ReduceScatterV: every rank holds sum(rows) rows of 2 values (r+1)*(row*2+col); rank q keeps its rows' sums.
        foreach (var (rows, label) in new[] { (Enumerable.Range(0, P).Select(r => (long)(r + 1)).ToArray(), "uneven"),
                                              (Enumerable.Repeat(2L, P).ToArray(), "even") })
        {
            long total = rows.Sum(), first = rows.Take(R).Sum();
            using var input = Block((int)total, 2, (row, col) => (R + 1) * (row * 2 + col), device);
            using var part = group.ReduceScatterV(input, rows);
            float factor = Enumerable.Range(1, P).Sum();
            Add($"reduce_scatter_v ({label})", part, Enumerable.Range(0, (int)rows[R] * 2)
                .Select(k => factor * ((first * 2) + k)).Select(v => (float)v).ToArray());
        }

        // AllToAllV: rank r sends (r + q + 1) % 3 rows to rank q (some none), row k holding 1000 r + 10 q + k in both columns.
        {
            long[] send = Enumerable.Range(0, P).Select(q => (long)((R + q + 1) % 3)).ToArray();
            long[] recv = Enumerable.Range(0, P).Select(r => (long)((r + R + 1) % 3)).ToArray();
            var values = Enumerable.Range(0, P).SelectMany(q => Enumerable.Range(0, (int)send[q]).SelectMany(k =>
                new[] { (float)(1000 * R + 10 * q + k), 1000 * R + 10 * q + k })).ToArray();
            using var input = tensor(values, dtype: ScalarType.Float32).reshape(-1, 2).to(device);
            using var output = group.AllToAllV(input, send, recv);
            Add("all_to_all_v", output, Enumerable.Range(0, P).SelectMany(r => Enumerable.Range(0, (int)recv[r]).SelectMany(k =>
                new[] { (float)(1000 * r + 10 * R + k), 1000 * r + 10 * R + k })).ToArray());
        }

        // Split by parity: the sub-group sums its ranks' world ranks.
        using (var sub = group.Split(R % 2, R))
        using (var t = Filled(4, _ => R, ScalarType.Float32, device))
        {
            sub.AllReduce(t);
            float expect = Enumerable.Range(0, P).Where(r => r % 2 == R % 2).Sum();
            Add($"split (parity group of {sub.Size}) all_reduce", t, Enumerable.Repeat(expect, 4).ToArray());
        }

        // Host arrays (metrics), and a barrier.
        var host = group.AllReduce(new double[] { R, 0.5 });
        results.Add(new("host all_reduce", host[0] == P * (P - 1) / 2.0 && host[1] == 0.5 * P, $"[{host[0]}, {host[1]}]"));
        group.Barrier();
        results.Add(new("barrier", true, "passed"));
        return results;
    }

    /// <summary>Seconds per all-reduce of <paramref name="bytes"/> of fp32 on <paramref name="device"/> (median of
    /// <paramref name="iterations"/> after a warm-up), with the algorithm and bus bandwidths in GB/s.</summary>
    public static (double Seconds, double AlgBw, double BusBw) Bandwidth(ProcessGroup group, Device device, long bytes, int iterations = 10)
    {
        using var t = ones(bytes / 4, dtype: ScalarType.Float32, device: device);
        group.AllReduce(t);
        var times = new List<double>();
        for (int i = 0; i < iterations; i++)
        {
            Sync(device);
            var sw = Stopwatch.StartNew();
            group.AllReduce(t);
            Sync(device);
            times.Add(sw.Elapsed.TotalSeconds);
        }
        times.Sort();
        double s = times[times.Count / 2];
        double alg = bytes / s / 1e9;
        return (s, alg, alg * 2 * (group.Size - 1) / Math.Max(1, group.Size));
    }

    private static void Sync(Device device)
    {
        if (device.type == DeviceType.CUDA) cuda.synchronize(device);
    }

    private static Tensor Filled(int n, Func<int, long> value, ScalarType dtype, Device device)
    {
        using var t = tensor(Enumerable.Range(0, n).Select(i => (double)value(i)).ToArray(), dtype: ScalarType.Float64);
        return t.to(dtype, device);
    }

    private static Tensor Block(int rows, int cols, Func<int, int, long> value, Device device)
    {
        using var t = tensor(Enumerable.Range(0, rows * cols).Select(k => (float)value(k / cols, k % cols)).ToArray(), dtype: ScalarType.Float32);
        using var shaped = t.reshape(rows, cols);
        return shaped.to(device);
    }
}
