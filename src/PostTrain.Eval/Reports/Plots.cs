// The report's plots, drawn with ScottPlot 5 and returned as SVG markup to inline in HTML: accuracy per model with
// its bootstrap interval, pass@k curves, completion-length histograms and training curves.
using PostTrain.Eval.Metrics;
using ScottPlot;

namespace PostTrain.Eval.Reports;

public static class Plots
{
    public const int Width = 560, Height = 320;

    /// <summary>Bars of greedy accuracy per model with 95% interval error bars.</summary>
    public static string Accuracy(string task, IReadOnlyList<TaskMetrics> perModel)
    {
        var plot = new Plot();
        double[] xs = Enumerable.Range(0, perModel.Count).Select(i => (double)i).ToArray();
        double[] ys = perModel.Select(m => m.Accuracy).ToArray();
        var bars = plot.Add.Bars(xs, ys);
        bars.Color = Colors.SteelBlue;
        var lower = perModel.Select(m => double.IsNaN(m.AccuracyCi.Lower) ? 0 : m.Accuracy - m.AccuracyCi.Lower).ToArray();
        var upper = perModel.Select(m => double.IsNaN(m.AccuracyCi.Upper) ? 0 : m.AccuracyCi.Upper - m.Accuracy).ToArray();
        var err = plot.Add.ErrorBar(xs, ys, upper);
        err.YErrorNegative = lower;
        err.YErrorPositive = upper;
        err.Color = Colors.Black;
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(xs, perModel.Select(m => m.Model).ToArray());
        plot.Axes.SetLimitsY(0, 1.05);
        plot.Title($"{task}: greedy accuracy (95% CI)");
        plot.YLabel("accuracy");
        return Svg(plot);
    }

    /// <summary>pass@k against k (log2 axis positions), one line per model.</summary>
    public static string PassAtK(string task, IReadOnlyList<TaskMetrics> perModel)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        int i = 0;
        foreach (var m in perModel.Where(m => m.PassAtK.Count > 0))
        {
            var xs = m.PassAtK.Keys.Select(k => System.Math.Log2(k)).ToArray();
            var sc = plot.Add.Scatter(xs, m.PassAtK.Values.ToArray());
            sc.LegendText = m.Model;
            sc.Color = palette.GetColor(i++);
            sc.MarkerSize = 6;
        }
        var ks = perModel.SelectMany(m => m.PassAtK.Keys).Distinct().Order().ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ks.Select(k => System.Math.Log2(k)).ToArray(), ks.Select(k => k.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray());
        plot.Axes.SetLimitsY(0, 1.05);
        plot.Title($"{task}: pass@k");
        plot.XLabel("k");
        plot.YLabel("pass@k");
        plot.ShowLegend();
        return Svg(plot);
    }

    /// <summary>Histogram of completion lengths (tokens), one step line per model over shared bins.</summary>
    public static string Lengths(string task, IReadOnlyList<(string Model, int[] Lengths)> perModel, int bins = 20)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        int max = System.Math.Max(1, perModel.SelectMany(m => m.Lengths).DefaultIfEmpty(1).Max());
        bins = System.Math.Min(bins, max + 1);
        double width = System.Math.Max(1.0, System.Math.Ceiling((max + 1) / (double)bins));
        int i = 0;
        foreach (var (model, lengths) in perModel)
        {
            var counts = new double[bins];
            foreach (int len in lengths) counts[System.Math.Min(bins - 1, (int)(len / width))]++;
            var edges = Enumerable.Range(0, bins).Select(b => b * width).ToArray();
            var sc = plot.Add.Scatter(edges, counts);
            sc.ConnectStyle = ConnectStyle.StepHorizontal;
            sc.LegendText = model;
            sc.Color = palette.GetColor(i++);
            sc.MarkerSize = 0;
            sc.LineWidth = 2;
        }
        plot.Title($"{task}: completion length (greedy)");
        plot.XLabel("tokens");
        plot.YLabel("problems");
        plot.ShowLegend();
        return Svg(plot);
    }

    /// <summary>One training curve against step.</summary>
    public static string Curve(CurveSeries series)
    {
        var plot = new Plot();
        var sc = plot.Add.Scatter(series.Steps, series.Values);
        sc.MarkerSize = series.Steps.Length > 50 ? 0 : 4;
        sc.Color = Colors.DarkOrange;
        plot.Title(series.Name);
        plot.XLabel("step");
        return Svg(plot);
    }

    private static string Svg(Plot plot)
    {
        var svg = plot.GetSvgXml(Width, Height);
        int start = svg.IndexOf("<svg", StringComparison.Ordinal);   // drop an XML declaration, if any
        return start > 0 ? svg[start..] : svg;
    }
}
