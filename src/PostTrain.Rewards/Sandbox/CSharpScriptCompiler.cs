// Compiles untrusted C# in the host as a C# script (top-level methods, classes and statements all allowed),
// against a fixed set of framework assemblies, Release, no unsafe, no #r/#load resolvers; checks it with
// CSharpApiPolicy and the CSharpAllowList.UntrustedPrograms list on the semantic model; emits the assembly bytes the worker loads. Compiling
// executes nothing of the program; Roslyn guards its own stack for deeply nested code, and the token bounds
// the time. Policy violations win over compile errors, so a forbidden API is reported by name.
using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using PostTrain.Rewards.Policy;

namespace PostTrain.Rewards.Sandbox;

internal sealed record CompiledScript(byte[] Assembly, string ScriptClass);

internal sealed record CompileFailure(Verdict Verdict, string Message);

internal static class CSharpScriptCompiler
{
    // Allowed APIs live in the first group; the second is referenced only so that forbidden APIs resolve and the
    // policy can name them (an unresolved HttpClient would otherwise read as a plain compile error).
    private static readonly string[] ReferenceNames =
    [
        "System.Private.CoreLib", "System.Runtime", "System.Console", "System.Collections", "System.Collections.Concurrent",
        "System.Collections.Immutable", "System.Collections.Specialized", "System.ObjectModel", "System.Linq",
        "System.Text.RegularExpressions", "System.Runtime.Numerics", "System.Memory", "System.Threading.Tasks.Parallel",
        "System.Diagnostics.Process", "System.Net.Http", "System.Net.Sockets", "System.Net.Primitives",
        "System.Threading", "System.Threading.Thread", "System.Runtime.InteropServices", "System.Reflection.Emit",
        "System.Linq.Expressions", "System.Linq.Queryable", "System.IO.FileSystem.Watcher", "System.ComponentModel.TypeConverter",
    ];

    private static readonly ImmutableArray<string> DefaultUsings =
        ["System", "System.Collections.Generic", "System.Linq", "System.Text", "System.Threading.Tasks"];

    private static readonly Lazy<ImmutableArray<MetadataReference>> References = new(() =>
    {
        var dir = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        return [.. ReferenceNames.Select(n => Path.Combine(dir, n + ".dll")).Where(File.Exists)
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p))];
    });

    private static readonly CSharpParseOptions ParseOptions =
        CSharpParseOptions.Default.WithKind(SourceCodeKind.Script).WithLanguageVersion(LanguageVersion.Latest);

    private static readonly CSharpCompilationOptions CompileOptions = new(
        OutputKind.DynamicallyLinkedLibrary, usings: DefaultUsings, optimizationLevel: OptimizationLevel.Release,
        allowUnsafe: false, concurrentBuild: false, metadataReferenceResolver: null, sourceReferenceResolver: null,
        xmlReferenceResolver: null, strongNameProvider: null);

    /// <summary>The compiled script, or why there is none.</summary>
    public static (CompiledScript? Script, CompileFailure? Failure) Compile(string code, CancellationToken ct)
    {
        var tree = CSharpSyntaxTree.ParseText(code, ParseOptions, cancellationToken: ct);
        var compilation = CSharpCompilation.CreateScriptCompilation(
            "sandbox-" + Guid.NewGuid().ToString("N"), tree, References.Value, CompileOptions);
        var violations = CSharpApiPolicy.Check(compilation.GetSemanticModel(tree), CSharpAllowList.UntrustedPrograms, ct);
        if (violations.Count > 0)
            return (null, new CompileFailure(Verdict.Forbidden, string.Join("; ", violations.Take(5).Select(v => v.Short()))));
        using var stream = new MemoryStream();
        var emit = compilation.Emit(stream, cancellationToken: ct);
        if (!emit.Success)
        {
            var errors = emit.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).Take(5).Select(d => d.ToString());
            return (null, new CompileFailure(Verdict.CompileError, string.Join("\n", errors)));
        }
        var scriptClass = compilation.ScriptClass?.MetadataName
            ?? throw new InvalidOperationException("script compilation has no script class");
        return (new CompiledScript(stream.ToArray(), scriptClass), null);
    }
}
