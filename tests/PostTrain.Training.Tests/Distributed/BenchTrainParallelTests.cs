// `posttrain launch --nproc-per-node 2 bench-train` on the CPU (micro-moe, fp32, lr 1e-2 so the weights move enough
// for a wrong gradient sync to show in the losses). The reference is the single-process bench-train (its own step
// code, not BenchTrainParallel) on the same global batches: one process with --batch 4 sees the rows that two ranks
// with --batch 2 split, so data parallelism must give its losses (sum of per-rank sums over the global token count);
// ZeRO 2 and expert parallelism over both ranks (same init: the EP model is copied from the full one) must give them
// too, and so must the fast path (each rank's fast step, the gradients summed between its backward and update bodies). The JSON row: world size 2, per-GPU rate = total / 2, communication share in (0, 1); rank 0 alone prints.
// Also: the launcher exports NVLink-multicast-off variables to every rank (a stand-in mpirun records what it gets),
// and bench-train's distributed options refuse bad layouts as usage errors (exit 2).
using System.Text.Json;

namespace PostTrain.Training.Tests.Distributed;

[Collection(MpiCollection.Name)]
public sealed class BenchTrainParallelTests
{
    private static readonly string[] Common = ["bench-train", "--model", "micro-moe", "--device", "cpu", "--dtype", "float32",
        "--seq", "16", "--steps", "5", "--warmup", "1", "--lr", "1e-2"];

    private static JsonElement Row(string output)
    {
        const string start = "{\"bench\":\"posttrain_train\"";   // mpirun's children may prefix terminal escapes
        var rows = output.Split('\n').Where(l => l.Contains(start, StringComparison.Ordinal)).Select(l => l[l.IndexOf(start, StringComparison.Ordinal)..]).ToList();
        Assert.True(rows.Count == 1, $"expected one JSON row (rank 0 only), got {rows.Count}:\n{output}");
        return JsonDocument.Parse(rows[0]).RootElement;
    }

    private static double[] Losses(JsonElement row) => row.GetProperty("losses").EnumerateArray().Select(x => x.GetDouble()).ToArray();

    private static JsonElement Launch(params string[] extra)
    {
        var (rc, output) = MpiRun.RunSingle(MpiRun.Cli, ["launch", "--nproc-per-node", "2", "--timeout", "60", .. Common, "--batch", "2", .. extra]);
        Assert.True(rc == 0, output);
        var row = Row(output);
        Assert.Contains("| micro-moe | 2 |", output);                     // the table row
        return row;
    }

    private static void AssertSameLosses(double[] expected, double[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5, $"{what}: step {i + 1} loss {actual[i]} vs one process {expected[i]}");
    }

    [Fact]
    public void TwoRanksTrainLikeOneProcessOnTheGlobalBatch()
    {
        var (rc, output) = MpiRun.RunSingle(MpiRun.Cli, [.. Common, "--batch", "4"]);
        Assert.True(rc == 0, output);
        var one = Row(output);
        Assert.Equal(1, one.GetProperty("world_size").GetInt32());
        var reference = Losses(one);
        Assert.True(Math.Abs(reference[0] - reference[^1]) > 1e-3, $"the weights barely moved: {string.Join(", ", reference)}");

        var dp = Launch();
        Assert.Equal(2, dp.GetProperty("world_size").GetInt32());
        Assert.Equal(4, dp.GetProperty("global_batch").GetInt32());
        Assert.Equal(0, dp.GetProperty("all_to_all_ms").GetDouble());
        double total = dp.GetProperty("tokens_per_s").GetDouble(), perGpu = dp.GetProperty("tokens_per_s_per_gpu").GetDouble();
        Assert.True(Math.Abs(perGpu - total / 2) <= 0.05, $"per GPU {perGpu} vs total {total} / 2");
        Assert.Equal(Math.Round(2 * 16 * 2 / (dp.GetProperty("step_ms").GetDouble() / 1000)), total, 0.01 * total);
        double share = dp.GetProperty("comm_share").GetDouble();
        Assert.True(share is > 0 and < 1, $"comm_share {share}");
        Assert.True(dp.GetProperty("grad_sync_ms").GetDouble() > 0);
        AssertSameLosses(reference, Losses(dp), "data parallel, 2 ranks");

        var zero2 = Launch("--zero", "2");
        Assert.Equal(2, zero2.GetProperty("zero").GetInt32());
        AssertSameLosses(reference, Losses(zero2), "ZeRO 2, 2 ranks");

        var ep = Launch("--expert-parallel", "2");
        Assert.Equal(2, ep.GetProperty("expert_parallel").GetInt32());
        double a2a = ep.GetProperty("all_to_all_share").GetDouble();
        Assert.True(a2a is > 0 and < 1, $"all_to_all_share {a2a}");
        Assert.True(ep.GetProperty("comm_share").GetDouble() is > 0 and < 1);
        AssertSameLosses(reference, Losses(ep), "expert parallel over 2 ranks");
    }

    [Fact]
    public void TwoRanksOnTheFastPathTrainLikeOneProcessOnTheGlobalBatch()
    {
        // each rank's fast step (chunked head loss over the global token count, fused AdamW, run eagerly on the CPU as it
        // is captured on CUDA) with the gradients summed over the ranks between its backward and update bodies
        var (rc, output) = MpiRun.RunSingle(MpiRun.Cli, [.. Common, "--batch", "4"]);
        Assert.True(rc == 0, output);
        var reference = Losses(Row(output));
        var fast = Launch("--fast-path", "on");
        Assert.StartsWith("eager", fast.GetProperty("fast_path").GetString());
        Assert.Equal(2, fast.GetProperty("world_size").GetInt32());
        Assert.True(fast.GetProperty("grad_sync_ms").GetDouble() > 0, "no gradient sum was timed");
        AssertSameLosses(reference, Losses(fast), "fast path, data parallel over 2 ranks");
    }

    [Fact]
    public void LaunchTurnsNvlinkMulticastOffForEveryRank()
    {
        string dir = Path.Combine(Path.GetTempPath(), "posttrain-fake-mpirun-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            // a stand-in mpirun: records its arguments and the three variables it was given, starts nothing
            string fake = Path.Combine(dir, "mpirun");
            File.WriteAllText(fake, "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$(dirname \"$0\")/args\"\n" +
                "echo \"NCCL_NVLS_ENABLE=$NCCL_NVLS_ENABLE TORCH_SYMM_MEM_DISABLE_MULTICAST=$TORCH_SYMM_MEM_DISABLE_MULTICAST " +
                "NVSHMEM_DISABLE_NVLS=$NVSHMEM_DISABLE_NVLS\" > \"$(dirname \"$0\")/env\"\n");
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var psi = new System.Diagnostics.ProcessStartInfo(MpiRun.Cli) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "launch", "--nproc-per-node", "2", "--mpirun", fake, "dist-check" }) psi.ArgumentList.Add(a);
            psi.Environment["NCCL_NVLS_ENABLE"] = "1";   // the caller's own setting does not switch multicast on
            using (var p = System.Diagnostics.Process.Start(psi)!)
            {
                string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
                Assert.True(p.WaitForExit(60_000), "launch did not end");
                Assert.True(p.ExitCode == 0, output);
            }
            Assert.Equal("NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1", File.ReadAllText(Path.Combine(dir, "env")).Trim());
            var args = File.ReadAllLines(Path.Combine(dir, "args"));
            foreach (var name in new[] { "NCCL_NVLS_ENABLE", "TORCH_SYMM_MEM_DISABLE_MULTICAST", "NVSHMEM_DISABLE_NVLS" })
                Assert.Contains(Enumerable.Range(1, args.Length - 1), i => args[i - 1] == "-x" && args[i] == name);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData("--max-devices-per-token 1", "--max-devices-per-token")]
    [InlineData("--expert-parallel 3", "--expert-parallel")]
    [InlineData("--zero 3", "--zero")]
    [InlineData("--zero 1 --fast-path on", "--fast-path on")]
    public void BadLayoutsAreUsageErrors(string options, string named)
    {
        var (rc, output) = MpiRun.RunSingle(MpiRun.Cli, [.. Common, "--batch", "2", .. options.Split(' ')]);
        Assert.True(rc == 2, output);
        Assert.Contains(named, output);
    }
}
