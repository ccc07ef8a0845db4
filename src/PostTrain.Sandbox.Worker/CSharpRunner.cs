// Runs one C# program's test cases. The host already compiled the code as a C# script and checked it against
// the API allow-list; here the assembly is loaded into a collectible context and, per case, the script is
// started through its generated <Factory> (top-level statements run with the case's stdin as Console.In), then
// in function mode the entry method (a script-level method, or Class.Method of a class the script declares) is
// called with the case's JSON arguments converted to its parameter types, and its result is serialized to JSON.
using System.Reflection;
using System.Runtime.Loader;
using System.Text.Json;
using PostTrain.Rewards.Sandbox;

namespace PostTrain.Sandbox.Worker;

internal sealed class CSharpRunner : ICaseRunner, IDisposable
{
    private static readonly JsonSerializerOptions ValueJson = new()
    {
        IncludeFields = true,
        MaxDepth = 256,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private readonly WorkerRequest _request;
    private readonly AssemblyLoadContext _context = new("sandbox-script", isCollectible: true);
    private readonly Type _script;
    private readonly MethodInfo _factory;

    public CSharpRunner(WorkerRequest request)
    {
        _request = request;
        var assembly = _context.LoadFromStream(new MemoryStream(request.Assembly
            ?? throw new InvalidDataException("C# request without an assembly")));
        _script = assembly.GetType(request.ScriptClass ?? "", throwOnError: true)!;
        _factory = _script.GetMethod("<Factory>", BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)
            ?? throw new InvalidDataException("script class has no <Factory>");
    }

    public CaseOutcome Run(WorkerCase testCase)
    {
        var stdout = new CappedWriter(_request.Limits.MaxOutputChars);
        Console.SetOut(stdout);
        Console.SetError(stdout);
        Console.SetIn(new StringReader(testCase.Stdin ?? ""));
        try
        {
            var submissions = new object?[2];
            ((Task)_factory.Invoke(null, [submissions])!).GetAwaiter().GetResult();
            if (_request.Entry is null) return Finish(stdout, stdout.ToString());
            var json = CallEntry(submissions[1], testCase.ArgsJson ?? "[]");
            return Finish(stdout, json);
        }
        catch (Exception) when (stdout.Exceeded)
        {
            return new(RunStatus.OutputLimit, null, $"output exceeded {_request.Limits.MaxOutputChars} characters");
        }
        finally
        {
            Console.SetOut(TextWriter.Null);
            Console.SetError(TextWriter.Null);
            Console.SetIn(TextReader.Null);
        }
    }

    public bool LeftStateBehind()
    {
        ThreadPool.GetAvailableThreads(out var available, out _);
        ThreadPool.GetMaxThreads(out var max, out _);
        if (max - available > 0 || ThreadPool.PendingWorkItemCount > 0 || Timer.ActiveCount > 0) return true;
        // A joined thread can still be listed for a moment while the OS tears it down.
        for (var attempt = 0; attempt < 10; attempt++)
        {
            if (WorkerIsolation.LeftoverThreads() == 0) return false;
            Thread.Sleep(2);
        }
        return true;
    }

    public void Dispose() => _context.Unload();

    private string CallEntry(object? submission, string argsJson)
    {
        using var args = JsonDocument.Parse(argsJson);
        if (args.RootElement.ValueKind != JsonValueKind.Array) throw new InvalidDataException("case arguments are not a JSON array");
        var count = args.RootElement.GetArrayLength();
        var method = FindEntry(_request.Entry!, count);
        object? target = null;
        if (!method.IsStatic)
            target = method.DeclaringType == _script ? submission : Activator.CreateInstance(method.DeclaringType!, nonPublic: true);
        var parameters = method.GetParameters();
        var values = new object?[count];
        var i = 0;
        foreach (var element in args.RootElement.EnumerateArray())
        {
            var type = parameters[i].ParameterType;
            try { values[i] = element.Deserialize(type, ValueJson); }
            catch (Exception e) when (e is JsonException or NotSupportedException or InvalidOperationException)
            {
                throw new ArgumentException($"argument {i} ({element.GetRawText()}) does not convert to {type.Name}: {e.Message}");
            }
            i++;
        }
        var result = method.Invoke(target, values);
        var resultType = method.ReturnType;
        if (result is Task task)
        {
            task.GetAwaiter().GetResult();
            var resultProperty = task.GetType().GetProperty("Result");
            result = resultType.IsGenericType ? resultProperty?.GetValue(task) : null;
            resultType = result?.GetType() ?? typeof(object);
        }
        if (resultType == typeof(void) || result is null) return "null";
        return JsonSerializer.Serialize(result, result.GetType(), ValueJson);
    }

    /// <summary>`Name` (script method, else a unique method of a declared class) or `Class.Name`; exact case
    /// first, then ignoring case; overloads by argument count.</summary>
    private MethodInfo FindEntry(string entry, int argCount)
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static
            | BindingFlags.Instance | BindingFlags.DeclaredOnly;
        var dot = entry.LastIndexOf('.');
        var types = dot < 0
            ? new[] { _script }.Concat(_script.GetNestedTypes(BindingFlags.Public | BindingFlags.NonPublic)).ToArray()
            : _script.GetNestedTypes(BindingFlags.Public | BindingFlags.NonPublic)
                .Where(t => string.Equals(t.Name, entry[..dot], StringComparison.OrdinalIgnoreCase)).ToArray();
        var name = dot < 0 ? entry : entry[(dot + 1)..];
        foreach (var comparison in new[] { StringComparison.Ordinal, StringComparison.OrdinalIgnoreCase })
        {
            foreach (var type in types)
            {
                var matches = type.GetMethods(all)
                    .Where(m => string.Equals(m.Name, name, comparison) && !m.IsSpecialName && !m.IsGenericMethodDefinition
                        && m.GetParameters().Length == argCount)
                    .ToArray();
                if (matches.Length == 1) return matches[0];
                if (matches.Length > 1) throw new MissingMethodException($"entry '{entry}' is ambiguous in {type.Name}");
            }
        }
        throw new MissingMethodException($"entry '{entry}' with {argCount} parameter(s) not found");
    }

    private CaseOutcome Finish(CappedWriter stdout, string output) => stdout.Exceeded
        ? new(RunStatus.OutputLimit, null, $"output exceeded {_request.Limits.MaxOutputChars} characters")
        : CaseOutcome.Completed(output);
}
