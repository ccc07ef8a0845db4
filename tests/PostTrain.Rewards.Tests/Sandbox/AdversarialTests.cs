// Each hostile program ends with a non-accepted verdict from its allowed set, within its limits (one test's
// budget plus the host's grace and a worker start on a busy machine, bounded only as a hang guard), the host process alive (it is this
// process) and nothing changed outside scratch (the sentinel file and its folder are as they were).
using PostTrain.Rewards.Sandbox;

namespace PostTrain.Rewards.Tests.Sandbox;

public sealed class AdversarialTests
{
    public static TheoryData<string> Names() => new(AdversarialCatalog.Cases.Select(c => c.Name));

    [Fact]
    public void CatalogIsLargeAndCoversBothLanguages()
    {
        Assert.True(AdversarialCatalog.Cases.Count(c => c.Language == "javascript") >= 20);
        Assert.True(AdversarialCatalog.Cases.Count(c => c.Language == "csharp") >= 20);
        Assert.Equal(AdversarialCatalog.Cases.Count, AdversarialCatalog.Cases.Select(c => c.Name).Distinct().Count());
    }

    [Theory]
    [MemberData(nameof(Names))]
    public async Task EndsNonAcceptedWithinLimitsAndLeavesSentinel(string name)
    {
        var c = AdversarialCatalog.Cases.Single(x => x.Name == name);
        var (result, elapsed) = await AdversarialRuns.Get(c);

        var verdict = Assert.Single(result.Tests).Verdict;
        Assert.True(c.Allowed.Contains(verdict),
            $"{name}: got {verdict} ({result.Tests[0].Detail}), expected one of {string.Join(", ", c.Allowed)}");
        Assert.NotEqual(Verdict.Accepted, verdict);
        Assert.Equal(0, result.Score);
        var budget = TestSandbox.Limits.TimePerTest * (SandboxPool.MaxRestarts + 1) + TestSandbox.Limits.HostGrace + TimeSpan.FromSeconds(150);   // + worker starts (up to 2 min at load 20): a hang guard
        Assert.True(elapsed < budget, $"{name} took {elapsed}");
        Assert.Equal(AdversarialRuns.SentinelText, File.ReadAllText(AdversarialRuns.SentinelPath));
        Assert.Single(Directory.GetFileSystemEntries(AdversarialRuns.SentinelDir));
        Assert.DoesNotContain("root:", result.Tests[0].Output ?? "", StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("cs-read-etc-passwd", "System.IO.File")]
    [InlineData("cs-process-start", "System.Diagnostics.Process")]
    [InlineData("cs-environment-variable", "System.Environment")]
    [InlineData("cs-thread", "System.Threading.Thread")]
    [InlineData("cs-type-gettype", "System.Type.GetType")]
    [InlineData("cs-console-setout", "System.Console.SetOut")]
    [InlineData("cs-socket", "System.Net.Sockets.Socket")]
    [InlineData("cs-unsafe-pointer", "unsafe")]
    [InlineData("cs-reference-directive", "#r")]
    public async Task ForbiddenVerdictNamesTheSymbol(string name, string symbol)
    {
        var (result, _) = await AdversarialRuns.Get(AdversarialCatalog.Cases.Single(x => x.Name == name));
        Assert.Equal(Verdict.Forbidden, result.Tests[0].Verdict);
        Assert.Contains(symbol, result.Tests[0].Detail, StringComparison.Ordinal);
    }
}
