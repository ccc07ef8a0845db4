// Makes TorchSharp 0.107's libLibTorchSharp.so load on systems whose libstdc++ predates GCC 13
// (Debian 12, Ubuntu 22.04: GLIBCXX_3.4.30). The library imports exactly one symbol at GLIBCXX_3.4.32,
// `_ZSt21ios_base_library_initv` (GCC 13's iostream-init hook, redundant here because libtorch's own
// libraries initialise iostreams). The patch edits three fields of the ELF file, no compiler needed:
//   1. .gnu.version_r: mark the GLIBCXX_3.4.32 requirement VER_FLG_WEAK, so a missing version is no error;
//   2. .gnu.version:   give the symbol version index 1 (global, unversioned);
//   3. .dynstr:        rename the import to `sched_yield`, a no-argument libc function, padded with NULs.
// It only ever rewrites a copy (the build output), atomically (temp file + rename), and is idempotent.
// This file is compiled twice: as an MSBuild inline task (build/TorchSharp.Native.targets) and into
// tests/PostTrain.Build.Tests, where POSTTRAIN_PATCH_TESTS hides the MSBuild task class.
#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace PostTrain.Build
{
    public enum PatchOutcome { NotNeeded, AlreadyPatched, Patched, Unpatchable }

    public sealed class PatchResult
    {
        public PatchOutcome Outcome { get; }
        public string Detail { get; }
        public PatchResult(PatchOutcome outcome, string detail) { Outcome = outcome; Detail = detail; }
        public override string ToString() => Outcome + ": " + Detail;
    }

    public static class LibTorchSharpPatch
    {
        public const string NeededVersion = "GLIBCXX_3.4.32";
        public const string HookSymbol = "_ZSt21ios_base_library_initv";
        public const string Replacement = "sched_yield";

        const uint ShtDynsym = 11, ShtGnuVersym = 0x6fffffff, ShtGnuVerneed = 0x6ffffffe;
        const ushort VerFlgWeak = 0x2;

        /// <summary>True when some libstdc++.so.6 on this system exports <paramref name="version"/>.
        /// False when none is found or none has it (then patching is the safe choice).</summary>
        public static bool SystemLibStdCxxHas(string version)
        {
            string[] candidates =
            {
                "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
                "/usr/lib/aarch64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6",
            };
            byte[] needle = Encoding.ASCII.GetBytes(version + "\0");
            foreach (var path in candidates)
            {
                if (!File.Exists(path)) continue;
                if (IndexOf(File.ReadAllBytes(path), needle, 0) >= 0) return true;
            }
            return false;
        }

        /// <summary>Looks at the file without changing it.</summary>
        public static PatchResult Inspect(string path) => Run(path, write: false);

        /// <summary>Patches the file in place (temp file + rename) when it needs it.</summary>
        public static PatchResult Apply(string path) => Run(path, write: true);

        static PatchResult Run(string path, bool write)
        {
            byte[] b = File.ReadAllBytes(path);
            if (b.Length < 64 || b[0] != 0x7f || b[1] != (byte)'E' || b[2] != (byte)'L' || b[3] != (byte)'F')
                return new PatchResult(PatchOutcome.Unpatchable, path + " is not an ELF file");
            if (b[4] != 2 || b[5] != 1)
                return new PatchResult(PatchOutcome.Unpatchable, path + " is not a little-endian 64-bit ELF file");

            ulong shoff = U64(b, 0x28);
            int shentsize = U16(b, 0x3A), shnum = U16(b, 0x3C);
            if (shoff == 0 || shentsize < 64 || shoff + (ulong)(shentsize * shnum) > (ulong)b.Length)
                return new PatchResult(PatchOutcome.Unpatchable, path + ": section header table missing or truncated");

            Section? dynsym = null, versym = null, verneed = null;
            var sections = new List<Section>();
            for (int i = 0; i < shnum; i++)
            {
                int h = (int)shoff + i * shentsize;
                var s = new Section(U32(b, h + 4), (long)U64(b, h + 24), (long)U64(b, h + 32), (int)U32(b, h + 40), U32(b, h + 44));
                sections.Add(s);
                if (s.Type == ShtDynsym) dynsym = s;
                else if (s.Type == ShtGnuVersym) versym = s;
                else if (s.Type == ShtGnuVerneed) verneed = s;
            }
            if (dynsym == null || verneed == null || versym == null)
                return new PatchResult(PatchOutcome.NotNeeded, "no versioned imports");
            Section dynstr = sections[dynsym.Link];

            // 1. Find the GLIBCXX_3.4.32 requirement.
            int auxOffset = -1;
            ushort versionIndex = 0;
            long vn = verneed.Offset;
            for (uint n = 0; n < verneed.Info && auxOffset < 0; n++)
            {
                int cnt = U16(b, (int)vn + 2);
                long aux = vn + U32(b, (int)vn + 8);
                for (int a = 0; a < cnt; a++)
                {
                    if (Str(b, dynstr.Offset + U32(b, (int)aux + 8)) == NeededVersion)
                    {
                        auxOffset = (int)aux;
                        versionIndex = (ushort)U16(b, (int)aux + 6);
                        break;
                    }
                    aux += U32(b, (int)aux + 12);
                }
                vn += U32(b, (int)vn + 12);
            }
            if (auxOffset < 0) return new PatchResult(PatchOutcome.NotNeeded, "does not require " + NeededVersion);

            // 2. Which imports are bound to it?
            int symCount = (int)(dynsym.Size / 24);
            var bound = new List<int>();
            for (int i = 0; i < symCount; i++)
                if ((U16(b, (int)versym.Offset + 2 * i) & 0x7fff) == versionIndex) bound.Add(i);

            bool weak = (U16(b, auxOffset + 4) & VerFlgWeak) != 0;
            if (bound.Count == 0 && weak)
                return new PatchResult(PatchOutcome.AlreadyPatched, NeededVersion + " is weak and unused");

            var toRename = new List<long>();
            foreach (int i in bound)
            {
                long nameAt = dynstr.Offset + U32(b, (int)dynsym.Offset + 24 * i);
                string name = Str(b, nameAt);
                if (name != HookSymbol)
                    return new PatchResult(PatchOutcome.Unpatchable, $"{path}: symbol '{name}' also needs {NeededVersion}; only '{HookSymbol}' can be dropped");
                toRename.Add(nameAt);
            }
            if (!write) return new PatchResult(PatchOutcome.Patched, "would patch " + bound.Count + " import(s)");

            W16(b, auxOffset + 4, (ushort)(U16(b, auxOffset + 4) | VerFlgWeak));
            foreach (int i in bound) W16(b, (int)versym.Offset + 2 * i, 1);
            byte[] repl = Encoding.ASCII.GetBytes(Replacement);
            foreach (long at in toRename)
            {
                int len = HookSymbol.Length;
                for (int k = 0; k < len; k++) b[at + k] = k < repl.Length ? repl[k] : (byte)0;
            }
            WriteAtomically(path, b);
            return new PatchResult(PatchOutcome.Patched, $"made {NeededVersion} weak, renamed {toRename.Count} import(s) to {Replacement}");
        }

        static void WriteAtomically(string path, byte[] bytes)
        {
            string tmp = path + ".posttrain-tmp";
            File.Copy(path, tmp, true);       // a fresh file (keeps the mode bits), never a link into the cache
            File.WriteAllBytes(tmp, bytes);
            // Rename replaces the directory entry: a hard link into the NuGet cache is never written through.
            File.Replace(tmp, path, null);
        }

        sealed class Section
        {
            public uint Type; public long Offset; public long Size; public int Link; public uint Info;
            public Section(uint type, long offset, long size, int link, uint info) { Type = type; Offset = offset; Size = size; Link = link; Info = info; }
        }

        static int U16(byte[] b, int o) => b[o] | (b[o + 1] << 8);
        static uint U32(byte[] b, int o) => BitConverter.ToUInt32(b, o);
        static ulong U64(byte[] b, int o) => BitConverter.ToUInt64(b, o);
        static void W16(byte[] b, int o, ushort v) { b[o] = (byte)v; b[o + 1] = (byte)(v >> 8); }
        static string Str(byte[] b, long o) { long e = o; while (e < b.Length && b[e] != 0) e++; return Encoding.ASCII.GetString(b, (int)o, (int)(e - o)); }
        static int IndexOf(byte[] hay, byte[] needle, int start)
        {
            for (int i = start; i <= hay.Length - needle.Length; i++)
            {
                int j = 0;
                while (j < needle.Length && hay[i + j] == needle[j]) j++;
                if (j == needle.Length) return i;
            }
            return -1;
        }
    }

#if !POSTTRAIN_PATCH_TESTS
    /// <summary>MSBuild task: patches every libLibTorchSharp.so under Directory when needed.</summary>
    public sealed class PatchLibTorchSharp : Microsoft.Build.Utilities.Task
    {
        [Microsoft.Build.Framework.Required] public string Directory { get; set; } = "";
        /// <summary>auto (only where the system libstdc++ lacks GLIBCXX_3.4.32) | always | never</summary>
        public string Mode { get; set; } = "auto";

        public override bool Execute()
        {
            if (Mode == "never" || !System.IO.Directory.Exists(Directory)) return true;
            if (Mode == "auto" && (!System.Runtime.InteropServices.RuntimeInformation.IsOSPlatform(System.Runtime.InteropServices.OSPlatform.Linux) || LibTorchSharpPatch.SystemLibStdCxxHas(LibTorchSharpPatch.NeededVersion)))
                return true;
            foreach (var file in System.IO.Directory.EnumerateFiles(Directory, "libLibTorchSharp.so", SearchOption.AllDirectories))
            {
                var r = LibTorchSharpPatch.Apply(file);
                if (r.Outcome == PatchOutcome.Unpatchable) { Log.LogError("PostTrain: cannot patch {0}: {1}", file, r.Detail); return false; }
                if (r.Outcome == PatchOutcome.Patched) Log.LogMessage(Microsoft.Build.Framework.MessageImportance.High, "PostTrain: patched {0} ({1})", file, r.Detail);
            }
            return true;
        }
    }
#endif
}
