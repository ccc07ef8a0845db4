// What a trainer needs besides its tensors to resume exactly: position in training and data, RNG states and
// the schedule's last value. Stored as trainer_state.json (snake_case keys) inside each checkpoint directory.
using System.Text.Json;
using System.Text.Json.Serialization;

namespace PostTrain.Training.Infra;

public sealed record TrainerState
{
    /// <summary>Optimizer steps completed; training resumes at this step.</summary>
    public long Step { get; init; }

    public int Epoch { get; init; }

    /// <summary>Samples (or batches, as the trainer defines) consumed within the current epoch.</summary>
    public long DataPosition { get; init; }

    public long TokensSeen { get; init; }

    /// <summary>The host PRNG's state (<see cref="Rng.State"/>).</summary>
    public ulong[]? Rng { get; init; }

    /// <summary>torch's CPU generator state, base64 (<see cref="TorchRng.Capture"/>).</summary>
    public string? TorchRngState { get; init; }

    /// <summary>Scheduler state: schedules are pure functions of Step; the last learning rate is kept to check that
    /// a resumed run continues on the same curve.</summary>
    public double LearningRate { get; init; }

    /// <summary>The next <paramref name="count"/> item indices of the epoch order, starting a new epoch (and its order,
    /// from <paramref name="orderOf"/>(epoch)) whenever the current one runs out; returns the advanced state.</summary>
    public TrainerState TakeNext(int count, ref int[] order, Func<int, int[]> orderOf, List<int> into)
    {
        var state = this;
        while (into.Count < count)
        {
            if (state.DataPosition >= order.Length)
            {
                state = state with { Epoch = state.Epoch + 1, DataPosition = 0 };
                order = orderOf(state.Epoch);
            }
            into.Add(order[state.DataPosition]);
            state = state with { DataPosition = state.DataPosition + 1 };
        }
        return state;
    }

    /// <summary>Trainer-specific values (e.g. best eval loss, skipped steps).</summary>
    public Dictionary<string, string> Extra { get; init; } = new();

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static TrainerState FromJson(string json, string source) =>
        JsonSerializer.Deserialize<TrainerState>(json, Json) ?? throw new InvalidDataException($"{source}: empty trainer state");
}
