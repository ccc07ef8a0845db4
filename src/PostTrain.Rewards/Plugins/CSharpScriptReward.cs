// A reward written as a C# script (rewards/*.csx), compiled with Roslyn scripting.
//
// Contract: the script's LAST EXPRESSION is the reward function, convertible to Func<RewardSample, RewardOutput>:
// a lambda (`s => s.Answer.Contains("42") ? 1.0 : 0.0`) or the name of a method the script declares
// (`RewardOutput Score(RewardSample s) { ... }` then a last line `Score`). Return a number, RewardOutput.Skip(reason)
// (not applicable) or `new RewardOutput(score, reason, metrics)`. The top level runs once at load with the recipe's
// options in the global `Options` (and helpers Option(key, fallback)); the returned function is then called from
// several threads at once, so keep it free of shared mutable state.
// Compilation: references = the framework's System.* assemblies and the host types; imports = System,
// System.Collections.Generic, System.Linq, System.Text, System.Text.RegularExpressions, System.Globalization and
// PostTrain.Rewards.Plugins; #r and #load resolve nothing; then CSharpApiPolicy with CSharpAllowList.Plugins
// rejects forbidden APIs.
// Errors name the file and line: policy violations and compile errors at load (RewardConfigException), exceptions
// thrown while scoring (PluginException, line from the script's debug information).
// Simplification: the code runs in-process; a script that loops forever cannot be stopped (the runner abandons the
// call at its timeout and the thread keeps spinning). Only load plugins you wrote or reviewed.
using System.Collections.Immutable;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Scripting;
using Microsoft.CodeAnalysis.Scripting;
using PostTrain.Rewards.Policy;

namespace PostTrain.Rewards.Plugins;

public sealed class CSharpScriptReward : IReward
{
    public static readonly string[] Imports =
    [
        "System", "System.Collections.Generic", "System.Linq", "System.Text", "System.Text.RegularExpressions",
        "System.Globalization", "PostTrain.Rewards.Plugins",
    ];

    private readonly Func<RewardSample, RewardOutput> _score;
    private readonly string _path;

    private CSharpScriptReward(string path, Func<RewardSample, RewardOutput> score)
    {
        (_path, _score) = (path, score);
        Name = Path.GetFileNameWithoutExtension(path);
    }

    public string Name { get; }

    public static CSharpScriptReward Load(string path, IReadOnlyDictionary<string, object?>? options = null)
    {
        if (!File.Exists(path)) throw new RewardConfigException($"{path}: plugin file not found");
        var fullPath = Path.GetFullPath(path);
        using var source = File.OpenRead(path);
        var script = CSharpScript.Create<Func<RewardSample, RewardOutput>>(source, Options(fullPath), typeof(RewardGlobals));
        var compilation = script.GetCompilation();

        var violations = CSharpApiPolicy.Check(compilation, CSharpAllowList.Plugins);
        if (violations.Count > 0)
            throw new RewardConfigException($"{path}: uses forbidden APIs:\n" + string.Join("\n", violations.Select(v => "  " + Relative(v.ToString(), fullPath, path))));
        var errors = compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).Take(5).ToList();
        if (errors.Count > 0)
            throw new RewardConfigException($"{path}: does not compile:\n" + string.Join("\n", errors.Select(d => "  " + Describe(d, path))));

        Func<RewardSample, RewardOutput>? score;
        try
        {
            score = script.RunAsync(new RewardGlobals(options ?? RewardInput.NoColumns)).GetAwaiter().GetResult().ReturnValue;
        }
        catch (CompilationErrorException e)
        {
            throw new RewardConfigException($"{path}: does not compile:\n" + string.Join("\n", e.Diagnostics.Take(5).Select(d => "  " + Describe(d, path))), e);
        }
        catch (Exception e)
        {
            throw new RewardConfigException($"{PluginException.Where(path, ScriptLine(e, fullPath))}top level threw {e.GetType().Name}: {e.Message}", e);
        }
        return new CSharpScriptReward(path, score ?? throw new RewardConfigException(
            $"{path}: the script's last expression must be the reward function, e.g. `s => 1.0` (Func<RewardSample, RewardOutput>)"));
    }

    public RewardResult Score(RewardInput input, CancellationToken cancellationToken)
    {
        RewardOutput? output;
        try
        {
            output = _score(new RewardSample(input));
        }
        catch (Exception e)
        {
            throw new PluginException(_path, ScriptLine(e, Path.GetFullPath(_path)), $"{e.GetType().Name}: {e.Message}", e);
        }
        return output?.ToResult() ?? throw new PluginException(_path, null, "the reward function returned null; return RewardOutput.Skip(reason) for not applicable");
    }

    private static ScriptOptions Options(string fullPath) => ScriptOptions.Default
        .WithReferences(References.Value)
        .WithImports(Imports)
        .WithFilePath(fullPath)
        .WithFileEncoding(Encoding.UTF8)
        .WithEmitDebugInformation(true)
        .WithAllowUnsafe(false)
        .WithMetadataResolver(NoReferences.Instance)
        .WithSourceResolver(NoSources.Instance);

    // Every framework assembly is referenced so that a forbidden call binds and CSharpApiPolicy can name it
    // ("System.Diagnostics.Process.Start is not allowed") instead of a vague "type not found"; the policy,
    // not the reference list, decides what a plugin may use.
    private static readonly Lazy<IReadOnlyList<MetadataReference>> References = new(() =>
        ((string?)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Where(p => Path.GetFileName(p) is var f && (f.StartsWith("System.", StringComparison.Ordinal) || f is "mscorlib.dll" or "netstandard.dll"))
            .Append(typeof(object).Assembly.Location)
            .Append(typeof(RewardSample).Assembly.Location)
            .Distinct(StringComparer.Ordinal)
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p))
            .ToList());

    // The first stack frame in the script file gives the line (the script is compiled with debug information).
    private static int? ScriptLine(Exception e, string fullPath) =>
        new System.Diagnostics.StackTrace(e, true).GetFrames()
            .FirstOrDefault(f => string.Equals(f.GetFileName(), fullPath, StringComparison.Ordinal))?.GetFileLineNumber() is { } line and > 0 ? line : null;

    private static string Describe(Diagnostic d, string path)
    {
        var pos = d.Location.GetLineSpan();
        return d.Location.IsInSource
            ? $"{path}:{pos.StartLinePosition.Line + 1}:{pos.StartLinePosition.Character + 1}: {d.Id}: {d.GetMessage()}"
            : $"{path}: {d.Id}: {d.GetMessage()}";
    }

    private static string Relative(string message, string fullPath, string path) => message.Replace(fullPath, path, StringComparison.Ordinal);

    // #r "..." resolves to nothing (CSharpApiPolicy reports the directive itself).
    private sealed class NoReferences : MetadataReferenceResolver
    {
        public static readonly NoReferences Instance = new();
        public override bool Equals(object? other) => other is NoReferences;
        public override int GetHashCode() => 1;
        public override ImmutableArray<PortableExecutableReference> ResolveReference(string reference, string? baseFilePath, MetadataReferenceProperties properties) => [];
    }

    // #load "..." resolves to nothing (CSharpApiPolicy reports the directive itself).
    private sealed class NoSources : SourceReferenceResolver
    {
        public static readonly NoSources Instance = new();
        public override bool Equals(object? other) => other is NoSources;
        public override int GetHashCode() => 2;
        public override string? NormalizePath(string path, string? baseFilePath) => null;
        public override string? ResolveReference(string path, string? baseFilePath) => null;
        public override Stream OpenRead(string resolvedPath) => throw new IOException($"#load is not allowed ({resolvedPath})");
    }
}
