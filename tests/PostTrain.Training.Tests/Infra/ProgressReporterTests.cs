// Progress output: plain lines on a fake clock (rates and ETA computed by hand), and the Spectre bar rendered
// into a string.
using PostTrain.Training.Infra;
using Spectre.Console;

namespace PostTrain.Training.Tests.Infra;

public sealed class ProgressReporterTests
{
    [Fact]
    public void Plain_prints_first_then_per_interval_then_last_with_window_rates()
    {
        double t = 0;
        var sw = new StringWriter { NewLine = "\n" };
        using var p = new PlainProgressReporter(sw, totalSteps: 10, startStep: 0, intervalSeconds: 5,
            clock: () => DateTimeOffset.FromUnixTimeMilliseconds((long)(t * 1000)));
        void At(double time, long step, double loss) { t = time; p.Update(step, loss, stepTokens: 100); }

        At(2, 1, 3.0);   // first: printed; window 2 s, 1 step, 100 tokens; eta 9 / 0.5 = 18 s
        At(4, 2, 2.9);   // 2 s after the last line: quiet
        At(12, 3, 2.5);  // 10 s: printed; 2 steps, 200 tokens; eta 7 / 0.2 = 35 s
        for (int s = 4; s <= 9; s++) At(12 + 0.1 * (s - 3), s, 2.0);
        At(13, 10, 1.23456); // last step: always printed; 7 steps, 700 tokens in 1 s
        p.Message("saved checkpoint step-000010");

        Assert.Equal(
            "step 1/10 (10.0%) | loss 3.0000 | 0.50 steps/s | 50.00 tok/s | eta 00:00:18\n" +
            "step 3/10 (30.0%) | loss 2.5000 | 0.20 steps/s | 20.00 tok/s | eta 00:00:35\n" +
            "step 10/10 (100.0%) | loss 1.2346 | 7.00 steps/s | 700.00 tok/s | eta 00:00:00\n" +
            "saved checkpoint step-000010\n", sw.ToString());
    }

    [Fact]
    public void Plain_rates_start_at_the_resumed_step()
    {
        double t = 0;
        var sw = new StringWriter { NewLine = "\n" };
        using var p = new PlainProgressReporter(sw, 100, startStep: 50, intervalSeconds: 60,
            clock: () => DateTimeOffset.FromUnixTimeMilliseconds((long)(t * 1000)));
        t = 4;
        p.Update(52, 1.0, 40000);
        Assert.Equal("step 52/100 (52.0%) | loss 1.0000 | 0.50 steps/s | 10.0k tok/s | eta 00:01:36\n", sw.ToString());
    }

    [Fact]
    public void Spectre_bar_renders_step_and_loss()
    {
        var sw = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.Yes,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.Yes,
            Out = new AnsiConsoleOutput(sw),
        });
        console.Profile.Width = 160;
        using (var p = new SpectreProgressReporter(console, totalSteps: 4, startStep: 0))
        {
            for (int s = 1; s <= 4; s++) p.Update(s, 1.0 / s, 10);
        }
        var text = sw.ToString();
        Assert.Contains("step 4/4 | loss 0.2500", text);
        Assert.Contains("100%", text);
    }
}
