// The few host functions a JavaScript program gets: console.log/info/debug and print (stdout),
// console.error/warn (stderr, not compared), process.stdout.write, readline() (next stdin line or undefined)
// and require('fs').readFileSync(0 | '/dev/stdin') (all of stdin). Everything else about Node is absent.
// Objects and arrays are printed as JSON (Node's util.inspect format is not reproduced).
using Jint;
using Jint.Native;
using Jint.Native.Json;
using Jint.Runtime;
using Jint.Runtime.Interop;

namespace PostTrain.Sandbox.Worker;

internal static class JavaScriptConsole
{
    public static void Install(Engine engine, string stdin, CappedWriter stdout, CappedWriter stderr)
    {
        var lines = stdin.Replace("\r\n", "\n").Split('\n');
        var lineCount = stdin.EndsWith('\n') ? lines.Length - 1 : lines.Length;
        var next = 0;

        var console = new JsObject(engine);
        console.Set("log", Printer(engine, "log", stdout));
        console.Set("info", Printer(engine, "info", stdout));
        console.Set("debug", Printer(engine, "debug", stdout));
        console.Set("error", Printer(engine, "error", stderr));
        console.Set("warn", Printer(engine, "warn", stderr));
        engine.SetValue("console", console);
        engine.SetValue("print", Printer(engine, "print", stdout));
        engine.SetValue("readline", new ClrFunction(engine, "readline",
            (_, _) => next < lineCount ? new JsString(lines[next++]) : JsValue.Undefined));

        var processStdout = new JsObject(engine);
        processStdout.Set("write", new ClrFunction(engine, "write", (_, args) =>
        {
            stdout.Write(args.Length > 0 ? TypeConverter.ToString(args[0]) : "");
            return JsBoolean.True;
        }));
        var process = new JsObject(engine);
        process.Set("stdout", processStdout);
        engine.SetValue("process", process);

        var fs = new JsObject(engine);
        fs.Set("readFileSync", new ClrFunction(engine, "readFileSync", (_, args) =>
        {
            var target = args.Length > 0 ? args[0] : JsValue.Undefined;
            if ((target.IsNumber() && TypeConverter.ToNumber(target) == 0) || (target.IsString() && target.ToString() == "/dev/stdin"))
                return new JsString(stdin);
            throw new JavaScriptException(engine.Intrinsics.Error, "ENOENT: the sandbox has no file system");
        }));
        engine.SetValue("require", new ClrFunction(engine, "require", (_, args) =>
            args.Length > 0 && args[0].IsString() && args[0].ToString() is "fs" or "node:fs"
                ? fs
                : throw new JavaScriptException(engine.Intrinsics.Error, "module not available in the sandbox")));
    }

    private static ClrFunction Printer(Engine engine, string name, CappedWriter writer) =>
        new(engine, name, (_, args) =>
        {
            for (var i = 0; i < args.Length; i++)
            {
                if (i > 0) writer.Write(' ');
                writer.Write(Format(engine, args[i]));
            }
            writer.Write('\n');
            return JsValue.Undefined;
        });

    private static string Format(Engine engine, JsValue value)
    {
        if (value.IsString()) return value.ToString();
        if (value.IsObject() && !value.IsCallable())
            return new JsonSerializer(engine).Serialize(value) is JsString s ? s.ToString() : TypeConverter.ToString(value);
        return TypeConverter.ToString(value);
    }
}
