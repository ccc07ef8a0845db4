// torch's CPU generator state as text for trainer_state.json. Simplification: CUDA generators are not captured
// (TorchSharp 0.107 exposes no CUDA get_rng_state); a trainer that samples on the GPU reseeds them from
// (seed, step) on resume instead.
using TorchSharp;

namespace PostTrain.Training.Infra;

public static class TorchRng
{
    public static string Capture()
    {
        using var state = torch.random.get_rng_state(); // uint8 (N,)
        return Convert.ToBase64String(state.bytes.ToArray());
    }

    public static void Restore(string base64)
    {
        var bytes = Convert.FromBase64String(base64);
        using var state = torch.tensor(bytes, torch.uint8);
        torch.random.set_rng_state(state);
    }
}
