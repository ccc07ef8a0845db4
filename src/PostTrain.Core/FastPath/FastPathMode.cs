// The training fast path switch (config key `fast_path`): auto = use it on CUDA when every requirement holds and say
// why when it falls back; on = require it (an error names what is missing); off = the plain eager step.
namespace PostTrain.Core.FastPath;

public enum FastPathMode
{
    Auto,
    On,
    Off,
}

public static class FastPathModes
{
    /// <summary>Parses auto|on|off (case-insensitive); anything else is an ArgumentException naming the key.</summary>
    public static FastPathMode Parse(string? value, string key = "fast_path") => (value ?? "auto").Trim().ToLowerInvariant() switch
    {
        "auto" => FastPathMode.Auto,
        "on" or "true" => FastPathMode.On,
        "off" or "false" => FastPathMode.Off,
        _ => throw new ArgumentException($"{key}: '{value}' is not one of auto, on, off."),
    };
}
