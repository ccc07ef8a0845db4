// Opens a dataset by its path: one .jsonl / .ndjson (JSON lines) or .parquet file, a directory of such files (e.g. a
// sharded dataset: data/shard-00000.parquet, ...), or a wildcard pattern in the file name (data/shard-*.parquet).
// Several files are read one after another in ordinal name order; each row keeps its own file and row number.
// Streaming in every case. Simplification: wildcards only in the last path segment; directories are not recursed.
using System.IO.Enumeration;

namespace PostTrain.Data.Readers;

public static class DatasetReader
{
    private static readonly string[] Extensions = [".jsonl", ".ndjson", ".parquet"];

    /// <summary>Streams the rows of a dataset file, directory or file-name pattern. Malformed JSONL lines throw a
    /// <see cref="DataException"/> unless <paramref name="skipBadRows"/>, then they are counted in
    /// <paramref name="stats"/>.</summary>
    public static IEnumerable<DataRow> Read(string path, bool skipBadRows = false, DataStats? stats = null)
    {
        var files = Files(path);
        return files.Count == 1 ? ReadFile(files[0], skipBadRows, stats) : files.SelectMany(f => ReadFile(f, skipBadRows, stats));
    }

    /// <summary>True when <paramref name="path"/> is an existing file or directory, or a pattern (its matches are
    /// checked when read).</summary>
    public static bool Exists(string path) => File.Exists(path) || Directory.Exists(path) || Path.GetFileName(path).IndexOfAny(['*', '?']) >= 0;

    /// <summary>The files <paramref name="path"/> names: itself when it is not a directory and has no wildcard
    /// (checked when read); a directory's dataset files; or the dataset files matching a `*`/`?` pattern in the file
    /// name. Sorted by ordinal name. A directory or pattern without dataset files is an error.</summary>
    public static IReadOnlyList<string> Files(string path)
    {
        if (Directory.Exists(path)) return Matching(path, "*", path);
        var name = Path.GetFileName(path);
        if (name.IndexOfAny(['*', '?']) < 0) return [path];
        var dir = Path.GetDirectoryName(path);
        dir = string.IsNullOrEmpty(dir) ? "." : dir;
        if (dir.IndexOfAny(['*', '?']) >= 0)
            throw new DataException(path, null, null, "wildcards are supported in the file name only (e.g. data/shard-*.parquet)");
        if (!Directory.Exists(dir)) throw new DataException(path, null, null, $"directory '{dir}' not found");
        return Matching(dir, name, path);
    }

    private static List<string> Matching(string dir, string pattern, string shownAs)
    {
        var files = Directory.EnumerateFiles(dir)
            .Where(f => FileSystemName.MatchesSimpleExpression(pattern, Path.GetFileName(f), ignoreCase: false))
            .Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
            .Order(StringComparer.Ordinal)
            .ToList();
        if (files.Count == 0)
            throw new DataException(shownAs, null, null, $"no dataset files ({string.Join(", ", Extensions)}) in '{dir}'" + (pattern == "*" ? "" : $" match '{pattern}'"));
        return files;
    }

    private static IEnumerable<DataRow> ReadFile(string path, bool skipBadRows, DataStats? stats)
    {
        var ext = Path.GetExtension(path).ToLowerInvariant();
        return ext switch
        {
            ".jsonl" or ".ndjson" => JsonlReader.Read(path, skipBadRows, stats),
            ".parquet" => ParquetDatasetReader.Read(path, stats),
            _ => throw new DataException(path, null, null,
                $"unknown dataset format '{ext}' (expected .jsonl, .ndjson or .parquet, a directory of them, or a pattern such as data/*.parquet)"),
        };
    }
}
