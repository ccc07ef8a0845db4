// The checker's verdict: correct or not, the answer it read from the prediction, and a short reason
// ("equal", "no answer found", "timeout", "too complex", "not equal: 0.28 vs 28", ...).
namespace PostTrain.Rewards.Math;

public sealed record MathVerdict(bool Correct, string? ExtractedAnswer, string Reason);
