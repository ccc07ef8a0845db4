// Identical C# programs compile once: GRPO samples several completions per prompt and a trained policy repeats
// itself, so the same program often arrives many times in one batch. Keyed by the SHA-256 of the code; a compilation in
// flight is shared by every caller of the same code. Results are a pure function of the code (compile errors and
// policy verdicts included), except a compilation that ran out of time or was cancelled: those are not kept. Bounded:
// past Capacity entries the cache starts over (a batch's duplicates are close together in time).
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace PostTrain.Rewards.Sandbox;

internal sealed class CompileCache(int capacity = 4096)
{
    private readonly ConcurrentDictionary<string, Lazy<Task<(CompiledScript?, CompileFailure?)>>> _entries = new(StringComparer.Ordinal);
    private long _hits;

    public long Hits => Interlocked.Read(ref _hits);

    public async Task<(CompiledScript?, CompileFailure?)> GetOrCompile(string code, Func<Task<(CompiledScript?, CompileFailure?)>> compile)
    {
        var key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(code)));
        if (_entries.Count >= capacity) _entries.Clear();
        var fresh = new Lazy<Task<(CompiledScript?, CompileFailure?)>>(compile);
        var entry = _entries.GetOrAdd(key, fresh);
        if (!ReferenceEquals(entry, fresh)) Interlocked.Increment(ref _hits);
        try
        {
            var result = await entry.Value.ConfigureAwait(false);
            if (result.Item2 is { Message: var m } && m.StartsWith("compilation took longer", StringComparison.Ordinal))
                _entries.TryRemove(new KeyValuePair<string, Lazy<Task<(CompiledScript?, CompileFailure?)>>>(key, entry));
            return result;
        }
        catch
        {
            _entries.TryRemove(new KeyValuePair<string, Lazy<Task<(CompiledScript?, CompileFailure?)>>>(key, entry));
            throw;
        }
    }
}
