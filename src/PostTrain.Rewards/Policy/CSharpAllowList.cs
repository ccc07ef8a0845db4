// What C# code may use, as data for CSharpApiPolicy. A type is allowed when the code declares it, when its full
// name is in AllowedTypes, or when its namespace is in AllowedNamespaces and it is not in DeniedTypes; on a type in
// AllowedMembersOnly only the listed members are allowed (the type itself stays usable as a value); a member in
// DeniedMembers is forbidden on an otherwise allowed type. Two lists, for the two kinds of C# PostTrain compiles:
//   Plugins           rewards/*.csx, trusted code run in the trainer process: a guard-rail against accidents
//                     (no files, network, processes, reflection, console, threads), not a security boundary.
//   UntrustedPrograms model-written programs, run in the sandbox worker process: also the console (stdin/stdout only),
//                     stackalloc, a few System.IO text readers/writers and Stopwatch, which solutions use.
namespace PostTrain.Rewards.Policy;

public sealed record CSharpAllowList
{
    public required IReadOnlySet<string> AllowedNamespaces { get; init; }
    public required IReadOnlySet<string> AllowedTypes { get; init; }
    public required IReadOnlySet<string> DeniedTypes { get; init; }
    public IReadOnlyDictionary<string, IReadOnlySet<string>> AllowedMembersOnly { get; init; } = new Dictionary<string, IReadOnlySet<string>>();
    public IReadOnlyDictionary<string, IReadOnlySet<string>> DeniedMembers { get; init; } = new Dictionary<string, IReadOnlySet<string>>();
    public bool AllowStackalloc { get; init; }

    private static readonly string[] DelegateReflection = ["DynamicInvoke", "CreateDelegate", "Method", "Target"];

    public static CSharpAllowList Plugins { get; } = new()
    {
        AllowedNamespaces = Set("System", "System.Collections", "System.Collections.Generic", "System.Collections.ObjectModel",
            "System.Linq", "System.Text", "System.Text.RegularExpressions", "System.Globalization", "System.Numerics",
            "System.Threading.Tasks"),
        AllowedTypes = Set("System.Threading.CancellationToken",
            typeof(Plugins.RewardSample).FullName!, typeof(Plugins.RewardOutput).FullName!, typeof(Plugins.RewardGlobals).FullName!),
        DeniedTypes = Set("System.Environment", "System.AppDomain", "System.AppContext", "System.Activator", "System.GC",
            "System.Console", "System.Type", "System.RuntimeTypeHandle", "System.RuntimeMethodHandle", "System.RuntimeFieldHandle",
            "System.ModuleHandle", "System.TypedReference", "System.ArgIterator", "System.Buffer"),
        DeniedMembers = new Dictionary<string, IReadOnlySet<string>>
        {
            ["System.Delegate"] = Set(DelegateReflection),
            ["System.MulticastDelegate"] = Set(DelegateReflection),
        },
    };

    public static CSharpAllowList UntrustedPrograms { get; } = new()
    {
        AllowedNamespaces = Set("System", "System.Collections", "System.Collections.Generic", "System.Collections.Concurrent",
            "System.Collections.Immutable", "System.Collections.ObjectModel", "System.Collections.Specialized",
            "System.Linq", "System.Text", "System.Text.RegularExpressions", "System.Numerics", "System.Globalization",
            "System.Threading.Tasks", "System.Buffers", "System.Diagnostics.CodeAnalysis"),
        AllowedTypes = Set("System.IO.TextReader", "System.IO.TextWriter", "System.IO.StringReader", "System.IO.StringWriter",
            "System.IO.IOException", "System.IO.EndOfStreamException", "System.IO.InvalidDataException",
            "System.Threading.CancellationToken", "System.Threading.CancellationTokenSource", "System.Threading.Interlocked",
            "System.Threading.Volatile", "System.Threading.Lock", "System.Diagnostics.Stopwatch",
            "System.Runtime.CompilerServices.MethodImplAttribute", "System.Runtime.CompilerServices.MethodImplOptions"),
        DeniedTypes = Set("System.Environment", "System.AppDomain", "System.AppContext", "System.GC", "System.GCMemoryInfo",
            "System.Activator", "System.TypedReference", "System.ArgIterator", "System.RuntimeArgumentHandle",
            "System.RuntimeTypeHandle", "System.RuntimeMethodHandle", "System.RuntimeFieldHandle", "System.ModuleHandle",
            "System.AppDomainSetup", "System.LoaderOptimizationAttribute", "System.Linq.Queryable", "System.Linq.IQueryable",
            "System.Linq.EnumerableQuery", "System.Threading.Tasks.TaskScheduler"),
        // Type: no reflection; Console: no raw streams; MemberInfo: Type inherits Name and friends from it.
        AllowedMembersOnly = new Dictionary<string, IReadOnlySet<string>>
        {
            ["System.Type"] = Set("Name", "FullName", "Namespace", "ToString", "Equals", "GetHashCode", "IsArray", "IsValueType",
                "IsEnum", "IsGenericType", "IsPrimitive", "IsClass", "IsInterface", "IsAbstract", "IsSealed", "op_Equality", "op_Inequality"),
            ["System.Console"] = Set("Write", "WriteLine", "Read", "ReadLine", "In", "Out", "Error"),
            ["System.Reflection.MemberInfo"] = Set("Name", "ToString", "Equals", "GetHashCode"),
        },
        DeniedMembers = new Dictionary<string, IReadOnlySet<string>>
        {
            ["System.Delegate"] = Set(DelegateReflection),
            ["System.MulticastDelegate"] = Set(DelegateReflection),
            ["System.Globalization.CultureInfo"] = Set("DefaultThreadCurrentCulture", "DefaultThreadCurrentUICulture"),
            ["System.Text.Encoding"] = Set("RegisterProvider"),
            ["System.Text.RegularExpressions.Regex"] = Set("CompileToAssembly", "CacheSize"),
            ["System.Threading.Tasks.Task"] = Set("Factory"),
            ["System.Exception"] = Set("TargetSite"),
        },
        AllowStackalloc = true,
    };

    private static HashSet<string> Set(params string[] items) => new(items, StringComparer.Ordinal);
}
