// Renders report.html in headless Debian chromium: the page must load offline with no console errors or failed
// resource loads, and the DOM must hold the tables and the inline SVG plots. Needs /usr/bin/chromium
// (scripts/ci/install-chromium.sh installs it); without it the test fails and says so. The screenshot is taken in the
// fixture's own folder (concurrent runs must not share it) and then copied to $TMPDIR/posttrain-eval-report.png
// (atomically) for a person to look at.
using System.Diagnostics;
using System.Text.RegularExpressions;

namespace PostTrain.Eval.Tests;

public sealed class BrowserTests(EvalFixture fx) : IClassFixture<EvalFixture>
{
    private const string Chromium = "/usr/bin/chromium";

    [Fact]
    public void ReportRendersOfflineWithPlotsAndNoConsoleErrors()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} not found: the report browser test needs Debian's chromium; run scripts/ci/install-chromium.sh (apt-get install -y --no-install-recommends chromium)");
        var url = new Uri(fx.Result.Reports!.Html).AbsoluteUri;
        var screenshot = Path.Combine(fx.Root, $"report-{Guid.NewGuid():N}.png");

        var (rc, _, log) = RunChromium($"--screenshot={screenshot} --window-size=1200,2000 --enable-logging=stderr --v=0 {url}");
        Assert.True(rc == 0, $"chromium --screenshot exited {rc}: {log}");
        Assert.True(File.Exists(screenshot) && new FileInfo(screenshot).Length > 20_000, $"no screenshot at {screenshot}");
        var kept = Path.Combine(Path.GetTempPath(), "posttrain-eval-report.png");
        var staged = kept + $".tmp-{Guid.NewGuid():N}";
        File.Copy(screenshot, staged);
        File.Move(staged, kept, overwrite: true);
        var consoleErrors = log.Split('\n').Where(l => l.Contains("CONSOLE", StringComparison.Ordinal) || l.Contains("Uncaught", StringComparison.Ordinal)
            || l.Contains("ERR_FILE_NOT_FOUND", StringComparison.Ordinal) || l.Contains("Failed to load resource", StringComparison.Ordinal)).ToList();
        Assert.True(consoleErrors.Count == 0, "console errors:\n" + string.Join("\n", consoleErrors));

        var (rc2, dom, log2) = RunChromium($"--dump-dom --enable-logging=stderr --v=0 {url}");
        Assert.True(rc2 == 0, $"chromium --dump-dom exited {rc2}: {log2}");
        Assert.Contains("<h2>Summary</h2>", dom);
        Assert.Contains("<h2>Training curves</h2>", dom);
        Assert.Equal(7, Regex.Matches(dom, "<svg").Count);
        Assert.True(Regex.Matches(dom, "<(path|polyline|rect|line)").Count > 50, "the SVG plots have no drawn elements");
        Assert.Contains("<details>", dom);
    }

    private (int Rc, string Stdout, string Stderr) RunChromium(string args)
    {
        var profile = Path.Combine(fx.Root, $"chromium-profile-{Guid.NewGuid():N}");
        var psi = new ProcessStartInfo(Chromium,
            "--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update --disable-sync " +
            $"--no-first-run --user-data-dir={profile} {args}")
        { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(90)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"chromium {args} did not finish in 90 s");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
