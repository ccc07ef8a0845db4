// Retry timing for teacher requests: exponential backoff with jitter. Attempt a (0-based) waits
// min(max, initial * 2^a) scaled by a uniform factor in [0.5, 1] ("equal jitter": never less than half the step, so
// retries stay spread out, never synchronised), and at least what the server asked for in Retry-After (capped at max).
namespace PostTrain.Training.Distill;

public static class Backoff
{
    /// <param name="u">A uniform draw in [0, 1).</param>
    public static TimeSpan Delay(int attempt, double initialSeconds, double maxSeconds, double u, double? retryAfterSeconds = null)
    {
        double step = Math.Min(maxSeconds, initialSeconds * Math.Pow(2, Math.Min(attempt, 60)));
        double seconds = step * (0.5 + 0.5 * u);
        if (retryAfterSeconds is double ra && ra > seconds) seconds = Math.Min(ra, maxSeconds);
        return TimeSpan.FromSeconds(seconds);
    }

    /// <summary>HTTP statuses worth retrying: request timeout, rate limiting and server errors (0 = no response).</summary>
    public static bool IsRetryable(int status) => status is 0 or 408 or 409 or 425 or 429 || status >= 500;
}
