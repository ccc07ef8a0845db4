// Worker scratch folders: every worker gets a fresh posttrain-sandbox-* folder as cwd and TMPDIR, and none is left
// behind once the pool is disposed, also right after runs that retire workers and start replacements in the
// background (a time-limit hit does both). The pool writes into this test's own folder, never the shared TMPDIR.
using PostTrain.Rewards.Sandbox;

namespace PostTrain.Rewards.Tests.Sandbox;

public sealed class SandboxScratchTests
{
    [Fact]
    public async Task DisposedPoolLeavesNoScratchFolders()
    {
        var root = Path.Combine(Path.GetTempPath(), "posttrain-scratch-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(root);
        try
        {
            var pool = new SandboxPool(TestSandbox.Limits with { MaxWorkers = 2 }, root);
            var ok = await pool.RunAsync(new CodeRequest("javascript", "function solve(a) { return a + 1; }",
                TestSandbox.Function("solve", ("[1]", "2"))), CancellationToken.None);
            Assert.Equal(Verdict.Accepted, ok.Tests[0].Verdict);
            Assert.NotEmpty(Directory.GetDirectories(root, "posttrain-sandbox-*"));   // the idle worker's folder
            // A case that never ends: the worker is killed and retired, a replacement starts in the background.
            var stuck = await pool.RunAsync(new CodeRequest("javascript", "function solve() { while (true) {} }",
                TestSandbox.Function("solve", ("[]", "1"))), CancellationToken.None);
            Assert.Equal(Verdict.TimeLimit, stuck.Tests[0].Verdict);
            pool.Dispose();
            Assert.Empty(Directory.GetFileSystemEntries(root));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
