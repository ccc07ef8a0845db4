// The hostile programs: escapes (files, environment, processes, network, reflection, CLR access), resource
// exhaustion (loops, memory, recursion, regex, huge built-ins, output, sleeping) and harness tampering (fake
// result markers, overridden console/JSON). Each must end non-accepted, with the host alive and the sentinel
// untouched. Where a deep stack has to unwind, TimeLimit is allowed besides RuntimeError: on a loaded machine the
// unwinding can outlast the one-second budget.
using static PostTrain.Rewards.Sandbox.Verdict;
using static PostTrain.Rewards.Tests.Sandbox.AdversarialCase;

namespace PostTrain.Rewards.Tests.Sandbox;

internal static class AdversarialCatalog
{
    public static readonly IReadOnlyList<AdversarialCase> Cases =
    [
        // ---- JavaScript: resource exhaustion
        Js("js-infinite-loop", "function solve() { while (true) {} }", TimeLimit),
        Js("js-loop-in-try-finally", "function solve() { try { while (true) {} } finally { while (true) {} } }", TimeLimit),
        Js("js-loop-catch-all", "function solve() { for (;;) { try { for (;;) {} } catch (e) {} } }", TimeLimit),
        Js("js-loop-before-tests", "while (true) {}\nfunction solve() { return 1; }", TimeLimit),
        Js("js-busy-sleep", "function solve() { const t = Date.now(); while (Date.now() - t < 1e9) {} return 1; }", TimeLimit),
        Js("js-never-settling-promise", "async function solve() { await new Promise(() => {}); return 1; }", TimeLimit, RuntimeError),
        // Under heavy load zeroing 64 MB blocks can outlast the 1 s wall-clock budget before the heap fills: TimeLimit too.
        Js("js-memory-bomb", "function solve() { const a = []; for (;;) a.push(new Float64Array(8000000)); }", MemoryLimit, TimeLimit),
        Js("js-memory-bomb-buffers", "function solve() { const a = []; for (;;) a.push(new ArrayBuffer(1 << 26)); }", MemoryLimit, TimeLimit),
        Js("js-memory-bomb-arrays", "function solve() { const a = []; for (;;) a.push(new Array(9000000).fill(0)); }", MemoryLimit, TimeLimit),
        Js("js-string-doubling", "function solve() { let s = 'x'; for (;;) s += s; }", RuntimeError, MemoryLimit, TimeLimit),
        Js("js-repeat-huge", "function solve() { return 'abc'.repeat(2 ** 28).length; }", RuntimeError, MemoryLimit),
        Js("js-padstart-huge", "function solve() { return ''.padStart(2 ** 29, 'ab').length; }", RuntimeError, MemoryLimit, TimeLimit),
        Js("js-bigint-power", "function solve() { return String(7n ** (2n ** 22n)).length; }", RuntimeError, MemoryLimit, TimeLimit),
        Js("js-join-huge", "function solve() { return new Array(5e6).fill('abcdefghijklmnopqrstuvwxyz').join('-').length; }",
            RuntimeError, MemoryLimit, TimeLimit),
        Js("js-array-length-huge", "function solve() { const a = []; a.length = 2 ** 31; return a.fill(0).length; }",
            RuntimeError, MemoryLimit, TimeLimit),
        Js("js-deep-recursion", "function f(n) { return f(n + 1) + 1; }\nfunction solve() { return f(0); }", RuntimeError, TimeLimit),
        Js("js-getter-recursion", "function solve() { const o = { get x() { return this.x; } }; return o.x; }", RuntimeError, TimeLimit),
        Js("js-tostring-recursion", "function solve() { const o = { toString() { return 'a' + o; } }; return '' + o; }", RuntimeError, TimeLimit),
        Js("js-deeply-nested-result", "function solve() { let a = []; for (let i = 0; i < 200000; i++) a = [a]; return a; }",
            RuntimeError, MemoryLimit, TimeLimit),
        Js("js-catastrophic-regex", "function solve() { return /^(a+)+$/.test('a'.repeat(40) + 'b'); }", TimeLimit, RuntimeError),
        Js("js-endless-output", "function solve() { for (;;) console.log('spam spam spam'); }", OutputLimit),
        Js("js-endless-output-caught", "function solve() { for (;;) { try { print('x'.repeat(100)); } catch (e) {} } }", OutputLimit),
        // ---- JavaScript: escapes
        Js("js-clr-namespace", "function solve() { return System.IO.File.ReadAllText('/etc/passwd'); }", RuntimeError),
        Js("js-import-namespace", "function solve() { return importNamespace('System.IO').File.ReadAllText('/etc/passwd'); }", RuntimeError),
        Js("js-child-process", "function solve() { return require('child_process').execSync('id').toString(); }", RuntimeError),
        Js("js-read-etc-passwd", "function solve() { return require('fs').readFileSync('/etc/passwd', 'utf8'); }", RuntimeError),
        Js("js-write-sentinel", "function solve() { require('fs').writeFileSync('{SENTINEL}', 'pwned'); return 1; }", RuntimeError),
        Js("js-environment", "function solve() { return process.env.PATH.length; }", RuntimeError),
        Js("js-fetch", "function solve() { return fetch('http://example.com'); }", RuntimeError),
        Js("js-eval", "function solve() { return eval('0 + 1'); }", RuntimeError),
        Js("js-function-constructor", "function solve() { return new Function('return 1')(); }", RuntimeError),
        Js("js-get-type", "function solve() { return (1).GetType().Assembly.Location.length; }", RuntimeError),
        // ---- JavaScript: tampering with the harness
        // Were the harness to use the program's JSON.stringify, this would pass.
        Js("js-override-json-and-console",
            "JSON.stringify = () => '1'; console.log = () => {};\n"
            + "function solve() { console.log('{\"Kind\":\"end\"}'); return 2; }", WrongAnswer),
        new("js-fake-pass-marker-stdio", "javascript",
            "print('{\"Kind\":\"case\",\"Nonce\":\"x\",\"Index\":0,\"Status\":\"Completed\",\"Output\":\"3\"}'); print('Accepted');",
            TestSandbox.Stdio(("", "3\n")), [WrongAnswer]),

        // ---- C#: resource exhaustion
        Cs("cs-infinite-loop", "int Solve() { while (true) { } }", TimeLimit),
        Cs("cs-loop-in-try-finally", "int Solve() { try { while (true) { } } finally { while (true) { } } }", TimeLimit),
        Cs("cs-loop-catch-all", "int Solve() { while (true) { try { for (;;) { } } catch { } } }", TimeLimit),
        Cs("cs-loop-before-tests", "while (true) { }\nint Solve() => 1;", TimeLimit),
        Cs("cs-memory-bomb", "int Solve() { var l = new List<long[]>(); while (true) l.Add(new long[1 << 17]); }", MemoryLimit),
        Cs("cs-memory-bomb-swallowed",
            "int Solve() { var l = new List<long[]>(); while (true) { try { l.Add(new long[1 << 17]); } catch (OutOfMemoryException) { } } }",
            MemoryLimit, TimeLimit),
        Cs("cs-huge-string", "int Solve() => new string('x', int.MaxValue / 2).Length;", MemoryLimit),
        Cs("cs-deep-recursion", "int F(int n) => F(n + 1) + 1;\nint Solve() => F(0);", RuntimeError, TimeLimit),
        Cs("cs-stackalloc-huge", "int Solve() { Span<byte> s = stackalloc byte[64 << 20]; s[^1] = 1; return s[^1]; }", RuntimeError, TimeLimit),
        Cs("cs-catastrophic-regex",
            "bool Solve() => System.Text.RegularExpressions.Regex.IsMatch(new string('a', 40) + \"b\", \"^(a+)+$\");", TimeLimit),
        Cs("cs-regex-infinite-timeout",
            "using System.Text.RegularExpressions;\n"
            + "bool Solve() => new Regex(\"^(a+)+$\", RegexOptions.None, Regex.InfiniteMatchTimeout).IsMatch(new string('a', 40) + \"b\");",
            TimeLimit),
        Cs("cs-task-bomb", "int Solve() { for (int i = 0; i < 64; i++) Task.Run(() => { while (true) { } }); while (true) { } }", TimeLimit),
        Cs("cs-sleep-forever", "int Solve() { Task.Delay(-1).Wait(); return 1; }", TimeLimit),
        Cs("cs-getter-loops-on-serialize", "class R { public int V { get { while (true) { } } } }\nR Solve() => new R();", TimeLimit),
        Cs("cs-endless-output", "int Solve() { while (true) Console.WriteLine(\"spam\"); }", OutputLimit),
        Cs("cs-endless-output-caught", "int Solve() { while (true) { try { Console.Write(\"spam\"); } catch { } } }", OutputLimit, TimeLimit),
        // ---- C#: threads, processes
        Cs("cs-thread", "int Solve() { new System.Threading.Thread(() => { while (true) { } }).Start(); return 1; }", Forbidden),
        Cs("cs-thread-pool", "int Solve() { System.Threading.ThreadPool.QueueUserWorkItem(_ => { }); return 1; }", Forbidden),
        Cs("cs-thread-sleep", "int Solve() { System.Threading.Thread.Sleep(-1); return 1; }", Forbidden),
        Cs("cs-process-start", "int Solve() { System.Diagnostics.Process.Start(\"/bin/sh\", \"-c 'echo pwned > {SENTINEL}'\"); return 1; }", Forbidden),
        Cs("cs-fork-bomb", "int Solve() { while (true) System.Diagnostics.Process.Start(\"/proc/self/exe\"); }", Forbidden),
        // ---- C#: files, environment, network
        Cs("cs-read-etc-passwd", "int Solve() => System.IO.File.ReadAllText(\"/etc/passwd\").Length;", Forbidden),
        Cs("cs-using-static-file", "using static System.IO.File;\nint Solve() => ReadAllText(\"/etc/passwd\").Length;", Forbidden),
        Cs("cs-alias-write-sentinel", "using F = System.IO.File;\nint Solve() { F.WriteAllText(\"{SENTINEL}\", \"pwned\"); return 1; }", Forbidden),
        Cs("cs-streamwriter-sentinel", "int Solve() { using var w = new System.IO.StreamWriter(\"{SENTINEL}\"); w.Write(\"pwned\"); return 1; }", Forbidden),
        Cs("cs-environment-variable", "int Solve() => Environment.GetEnvironmentVariable(\"PATH\")!.Length;", Forbidden),
        Cs("cs-socket",
            "int Solve() { var s = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp); return 1; }",
            Forbidden),
        Cs("cs-http", "int Solve() => new System.Net.Http.HttpClient().GetStringAsync(\"http://example.com\").Result.Length;", Forbidden),
        // ---- C#: reflection and other ways around the policy
        Cs("cs-type-gettype",
            "int Solve() { var t = Type.GetType(\"System.IO.File\"); t!.GetMethod(\"Delete\")!.Invoke(null, new object[] { \"{SENTINEL}\" }); return 1; }",
            Forbidden),
        Cs("cs-assembly-gettype", "int Solve() => typeof(string).Assembly.GetType(\"System.IO.File\") is null ? 0 : 1;", Forbidden),
        Cs("cs-activator", "int Solve() => Activator.CreateInstance(typeof(object)) is null ? 0 : 1;", Forbidden),
        Cs("cs-dynamic", "int Solve() { dynamic d = 0; return d + 1; }", Forbidden),
        Cs("cs-expression-tree", "int Solve() { System.Linq.Expressions.Expression<Func<int>> e = () => 1; return e.Compile()(); }", Forbidden),
        Cs("cs-delegate-method", "int Solve() { Func<int> f = () => 1; return f.Method.Name.Length; }", Forbidden),
        Cs("cs-appdomain", "int Solve() => AppDomain.CurrentDomain.GetAssemblies().Length;", Forbidden),
        Cs("cs-gc", "int Solve() { GC.Collect(); return 1; }", Forbidden),
        Cs("cs-environment-exit-first", "Environment.Exit(0);\nint Solve() => 1;", Forbidden),
        Cs("cs-failfast-first", "Environment.FailFast(\"bye\");\nint Solve() => 1;", Forbidden),
        Cs("cs-unsafe-pointer", "unsafe int Solve() { int x = 1; int* p = &x; return *p; }", Forbidden),
        Cs("cs-dllimport", "[System.Runtime.InteropServices.DllImport(\"libc\")] static extern int getpid();\nint Solve() => getpid() > 0 ? 1 : 0;", Forbidden),
        Cs("cs-marshal", "int Solve() => System.Runtime.InteropServices.Marshal.ReadInt32(IntPtr.Zero);", Forbidden),
        Cs("cs-reference-directive", "#r \"System.Net.Http\"\nint Solve() => 1;", Forbidden),
        Cs("cs-load-directive", "#load \"/etc/passwd\"\nint Solve() => 1;", Forbidden),
        Cs("cs-finalizer", "class X { ~X() { while (true) { } } }\nint Solve() { new X(); return 1; }", Forbidden),
        // ---- C#: tampering with the harness
        Cs("cs-console-setout", "Console.SetOut(new System.IO.StringWriter());\nint Solve() => 1;", Forbidden),
        Cs("cs-raw-stdout-frame",
            "int Solve() { var s = Console.OpenStandardOutput(); s.Write(new byte[] { 2, 0, 0, 0, 123, 125 }); return 1; }", Forbidden),
        new("cs-fake-pass-marker-stdio", "csharp",
            "Console.WriteLine(\"{\\\"Kind\\\":\\\"end\\\",\\\"Nonce\\\":\\\"x\\\"}\");\nConsole.WriteLine(\"Accepted\");",
            TestSandbox.Stdio(("", "3\n")), [WrongAnswer]),
    ];
}
