// Loads a safetensors checkpoint into a model's existing parameters and buffers (name -> tensor).
// First compares names and shapes from the headers alone and reports every missing, unexpected and
// mis-shaped tensor in one error; only then copies, one tensor at a time (peak extra memory: one
// tensor), converting dtype and device as needed, straight into the target's memory when it is a
// contiguous CPU tensor of the stored dtype. Copies run under no_grad, so parameters stay leaves.
using System.Text.RegularExpressions;
using TorchSharp;
using static TorchSharp.torch;

namespace PostTrain.Core.Checkpoints;

public static class CheckpointLoader
{
    public static CheckpointLoadReport LoadInto(IReadOnlyDictionary<string, Tensor> expected, string dir, CheckpointLoadOptions? options = null)
    {
        options ??= new CheckpointLoadOptions();
        var allowUnexpected = options.AllowUnexpected.Select(p => new Regex(p, RegexOptions.CultureInvariant)).ToList();
        var allowMissing = options.AllowMissing.Select(p => new Regex(p, RegexOptions.CultureInvariant)).ToList();

        using var checkpoint = SafeTensorsCheckpoint.Open(dir);
        var pairs = options.DequantizeFp8 ? Fp8ScalePairs.Find(checkpoint.Tensors) : [];
        var scales = pairs.Values.ToHashSet(StringComparer.Ordinal);
        var stored = checkpoint.Tensors.Values.Where(t => !scales.Contains(t.Name)).ToDictionary(t => t.Name, StringComparer.Ordinal);

        var missing = new List<(string, long[])>();
        var allowedMissing = new List<string>();
        var misShaped = new List<(string, long[], long[], string)>();
        var toLoad = new List<string>();
        foreach (var (name, target) in expected.OrderBy(kv => kv.Key, NaturalComparer.Instance))
        {
            if (!stored.TryGetValue(name, out var info))
            {
                if (allowMissing.Any(r => r.IsMatch(name))) allowedMissing.Add(name);
                else missing.Add((name, target.shape));
            }
            else if (!target.shape.SequenceEqual(info.Shape))
                misShaped.Add((name, target.shape, info.Shape, info.File));
            else
                toLoad.Add(name);
        }
        var unexpected = new List<(string, long[], string)>();
        var ignoredUnexpected = new List<string>();
        foreach (var info in stored.Values.Where(t => !expected.ContainsKey(t.Name)).OrderBy(t => t.Name, NaturalComparer.Instance))
        {
            if (allowUnexpected.Any(r => r.IsMatch(info.Name))) ignoredUnexpected.Add(info.Name);
            else unexpected.Add((info.Name, info.Shape, info.File));
        }
        if (missing.Count + unexpected.Count + misShaped.Count > 0)
            throw new CheckpointMismatchException(checkpoint.Path, missing, unexpected, misShaped, Hint(options, unexpected));

        foreach (var name in toLoad)
        {
            using var scope = torch.NewDisposeScope();
            var target = expected[name];
            if (pairs.TryGetValue(name, out var scaleName))
            {
                // Dequantise on the target's device (fast on a GPU), then copy with dtype conversion.
                var value = Fp8BlockDequantizer.Dequantize(checkpoint.Read(name).to(target.device), checkpoint.Read(scaleName).to(target.device));
                using var noGrad = torch.no_grad();
                target.copy_(value);
            }
            else
            {
                checkpoint.ReadInto(name, target);
            }
        }
        return new CheckpointLoadReport(toLoad, ignoredUnexpected, allowedMissing);
    }

    private static string? Hint(CheckpointLoadOptions options, List<(string Name, long[], string)> unexpected) =>
        !options.DequantizeFp8 && unexpected.Any(u => u.Name.EndsWith(Fp8BlockDequantizer.ScaleSuffix, StringComparison.Ordinal))
            ? $"the checkpoint has FP8 block scales (*{Fp8BlockDequantizer.ScaleSuffix}); set DequantizeFp8 = true to dequantise them on load"
            : null;
}
