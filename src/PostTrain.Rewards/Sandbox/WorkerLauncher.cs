// How the host starts a worker: `dotnet <dir>/sandbox-worker/posttrain-sandbox-worker.dll` (the dotnet host of the
// running runtime), or, in a self-contained bundle (scripts/gpu/publish.sh: no dotnet on that machine), the worker's own
// apphost `posttrain-sandbox-worker` published beside the app on the same runtime files; optionally wrapped in `unshare --net` (as root) or `unshare --net --map-root-user`
// (unprivileged user namespaces), whichever a one-time probe shows works; cwd = a fresh scratch folder; the
// environment cleared down to the runtime knobs the worker needs (heap hard limit, no diagnostics IPC).
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace PostTrain.Rewards.Sandbox;

internal static class WorkerLauncher
{
    public const string WorkerFolder = "sandbox-worker";
    public const string WorkerDll = "posttrain-sandbox-worker.dll";
    public const string WorkerAppHost = "posttrain-sandbox-worker";

    private static readonly Lazy<string[]> NetworkWrapper = new(ProbeUnshare);

    /// <summary>The worker dll: $POSTTRAIN_SANDBOX_WORKER, else sandbox-worker/ next to this assembly or the app.</summary>
    public static string FindWorker()
    {
        if (Environment.GetEnvironmentVariable("POSTTRAIN_SANDBOX_WORKER") is { Length: > 0 } overridden)
            return File.Exists(overridden) ? overridden
                : throw new FileNotFoundException($"POSTTRAIN_SANDBOX_WORKER points to a missing file: {overridden}");
        var candidates = new[] { Path.GetDirectoryName(typeof(WorkerLauncher).Assembly.Location), AppContext.BaseDirectory }
            .Where(d => !string.IsNullOrEmpty(d)).Select(d => Path.Combine(d!, WorkerFolder, WorkerDll)).ToArray();
        return candidates.FirstOrDefault(File.Exists) ?? throw new FileNotFoundException(
            "sandbox worker not found; PostTrain.Rewards copies it on build. Looked in: " + string.Join(", ", candidates));
    }

    public static string DotnetHost()
    {
        var fromRuntime = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", "..", "dotnet"));
        if (File.Exists(fromRuntime)) return fromRuntime;
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } hostPath && File.Exists(hostPath)) return hostPath;
        return Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";
    }

    /// <summary>The worker's command line: the self-contained apphost when this app is a self-contained bundle that
    /// ships one (and no worker dll is forced by $POSTTRAIN_SANDBOX_WORKER), else the dotnet host and the worker dll.</summary>
    public static string[] WorkerCommand()
    {
        if (Environment.GetEnvironmentVariable("POSTTRAIN_SANDBOX_WORKER") is not { Length: > 0 } && SelfContainedAppHost() is { } apphost)
            return [apphost];
        return [DotnetHost(), FindWorker()];
    }

    private static string? SelfContainedAppHost()
    {
        // A self-contained app carries the runtime beside itself: the core library lives in the app folder.
        var appDir = AppContext.BaseDirectory;
        var coreDir = Path.GetDirectoryName(typeof(object).Assembly.Location);
        if (string.IsNullOrEmpty(coreDir) || Path.GetFullPath(coreDir).TrimEnd('/') != Path.GetFullPath(appDir).TrimEnd('/')) return null;
        var apphost = Path.Combine(appDir, WorkerAppHost);
        return File.Exists(apphost) ? apphost : null;
    }

    /// <summary>True when workers run in their own network namespace.</summary>
    public static bool HasNetworkNamespace => NetworkWrapper.Value.Length > 0;

    public static ProcessStartInfo StartInfo(string language, SandboxLimits limits, string scratch)
    {
        var info = new ProcessStartInfo
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = scratch,
        };
        var command = WorkerCommand();
        var wrapper = NetworkWrapper.Value;
        info.FileName = wrapper.Length > 0 ? wrapper[0] : command[0];
        foreach (var arg in wrapper.Skip(1)) info.ArgumentList.Add(arg);
        foreach (var arg in command.Skip(wrapper.Length > 0 ? 0 : 1)) info.ArgumentList.Add(arg);

        info.Environment.Clear();
        var heap = limits.MemoryBytes + (96L << 20); // the worker's own baseline (runtime, Jint) on top
        info.Environment["DOTNET_GCHeapHardLimit"] = heap.ToString("x", CultureInfo.InvariantCulture);
        info.Environment["DOTNET_gcConcurrent"] = "0";
        info.Environment["DOTNET_EnableDiagnostics"] = "0";
        info.Environment["DOTNET_EnableWriteXorExecute"] = "0";
        info.Environment["DOTNET_TieredPGO"] = "0";
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["TMPDIR"] = scratch;
        info.Environment["POSTTRAIN_SANDBOX_HEAP"] = limits.MemoryBytes.ToString(CultureInfo.InvariantCulture);
        info.Environment["POSTTRAIN_SANDBOX_LANGUAGE"] = language;
        info.Environment["POSTTRAIN_SANDBOX_REGEX_MS"] = ((int)limits.RegexTimeout.TotalMilliseconds).ToString(CultureInfo.InvariantCulture);
        if (ReadNetworkNamespace() is { } net) info.Environment["POSTTRAIN_SANDBOX_HOSTNET"] = net;
        return info;
    }

    /// <summary>A fresh scratch folder under <paramref name="root"/> (default: the temp folder), world-writable
    /// because the worker drops to nobody when started as root.</summary>
    public static string CreateScratch(string? root = null)
    {
        var dir = root is null ? Directory.CreateTempSubdirectory("posttrain-sandbox-").FullName
            : Directory.CreateDirectory(Path.Combine(root, "posttrain-sandbox-" + Guid.NewGuid().ToString("N"))).FullName;
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
                | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute);
        return dir;
    }

    // .NET's link APIs size the buffer from lstat, which is 0 for /proc links, so ask libc directly.
    [DllImport("libc", EntryPoint = "readlink", SetLastError = true)]
    private static extern nint ReadLink([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte[] buffer, nint size);

    private static string? ReadNetworkNamespace()
    {
        if (!OperatingSystem.IsLinux()) return null;
        var buffer = new byte[256];
        var length = ReadLink("/proc/self/ns/net", buffer, buffer.Length);
        return length > 0 ? System.Text.Encoding.ASCII.GetString(buffer, 0, (int)length) : null;
    }

    private static string[] ProbeUnshare()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("POSTTRAIN_SANDBOX_NO_UNSHARE") == "1") return [];
        var unshare = new[] { "/usr/bin/unshare", "/bin/unshare" }.FirstOrDefault(File.Exists);
        if (unshare is null) return [];
        foreach (var args in new[] { new[] { "--net" }, ["--net", "--map-root-user"] })
        {
            try
            {
                var probe = new ProcessStartInfo(unshare) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
                foreach (var a in args) probe.ArgumentList.Add(a);
                probe.ArgumentList.Add("true");
                using var process = Process.Start(probe)!;
                if (process.WaitForExit(5000) && process.ExitCode == 0) return [unshare, .. args];
                if (!process.HasExited) process.Kill();
            }
            catch (System.ComponentModel.Win32Exception) { return []; }
        }
        return [];
    }
}
