// Device-limited routing (DeepSeek-V3's node-limited routing, with devices for nodes): each token's experts lie on at
// most M devices. Devices are scored per token by the sum of the highest ceil(k / M) biased affinity scores of the
// experts they hold; the best M devices are kept and the other devices' experts masked to -inf before the router's
// top-k. Experts are laid out contiguously: device d holds experts [d E/P, (d+1) E/P).
using static TorchSharp.torch;

namespace PostTrain.Core.Distributed;

public static class DeviceLimitedRouting
{
    /// <summary>choice (N, E) biased selection scores -> the same with experts off the token's best M devices at -inf.</summary>
    public static Tensor Mask(Tensor choice, int devices, int maxDevicesPerToken, int expertsPerToken)
    {
        if (maxDevicesPerToken >= devices) return choice;
        long n = choice.shape[0], perDevice = choice.shape[1] / devices;
        int top = (int)Math.Min(perDevice, (expertsPerToken + maxDevicesPerToken - 1) / maxDevicesPerToken);
        var byDevice = choice.view(n, devices, perDevice);                                   // (N, P, E/P)
        var deviceScores = byDevice.topk(top, dim: -1).values.sum(-1);                     // (N, P)
        var keep = deviceScores.topk(maxDevicesPerToken, dim: -1, sorted: false).indexes;  // (N, M)
        var mask = zeros_like(deviceScores).scatter_(1, keep, ones_like(keep, dtype: deviceScores.dtype));
        var expertMask = mask.unsqueeze(-1).expand(n, devices, perDevice).reshape(n, -1);
        return choice.masked_fill(expertMask.logical_not(), double.NegativeInfinity);
    }
}
