// The globals a chat template sees, as transformers sets them up: jinja2's range, namespace, dict, cycler-free
// basics, plus raise_exception(msg) (an error of kind raise_exception carrying the template's message) and
// strftime_now(fmt) (the clock is injectable so renders can be pinned, as `--now` does).
namespace PostTrain.Data.Templates.Jinja;

public static class Globals
{
    public static Scope Create(Func<DateTime> now)
    {
        var g = new Scope(null);
        g.Set("range", new PyFunction("range", (a, _) => Range(a)));
        g.Set("namespace", new PyFunction("namespace", (a, k) =>
        {
            var ns = new Namespace();
            foreach (var arg in a)
            {
                if (arg is not PyDict d) throw JinjaException.Type("namespace() takes mappings or keyword arguments");
                foreach (var (key, v) in d) ns.Attributes[PyStr.Str(key)] = v;
            }
            foreach (var (key, v) in k) ns.Attributes[key] = v;
            return ns;
        }));
        g.Set("dict", new PyFunction("dict", (a, k) =>
        {
            var d = new PyDict();
            if (a.Count > 0 && a[0] is PyDict src) foreach (var (key, v) in src) d[key] = v;
            foreach (var (key, v) in k) d[key] = v;
            return d;
        }));
        g.Set("raise_exception", new PyFunction("raise_exception", (a, _) =>
            throw new JinjaException("raise_exception", a.Count > 0 ? PyStr.Str(a[0]) : "raise_exception called")));
        g.Set("strftime_now", new PyFunction("strftime_now", (a, _) =>
            Strftime.Format(now(), a.Count > 0 && a[0] is string f ? f : throw JinjaException.Type("strftime_now needs a format string"))));
        return g;
    }

    private static List<object?> Range(List<object?> a)
    {
        long Int(object? v) => v switch { long l => l, bool b => b ? 1 : 0, _ => throw JinjaException.Type($"'{PyTypes.Name(v)}' object cannot be interpreted as an integer") };
        long start = 0, stop, step = 1;
        switch (a.Count)
        {
            case 1: stop = Int(a[0]); break;
            case 2: start = Int(a[0]); stop = Int(a[1]); break;
            case 3: start = Int(a[0]); stop = Int(a[1]); step = Int(a[2]); break;
            default: throw JinjaException.Type($"range expected 1 to 3 arguments, got {a.Count}");
        }
        if (step == 0) throw new JinjaException("value_error", "range() arg 3 must not be zero");
        var r = new List<object?>();
        for (long i = start; step > 0 ? i < stop : i > stop; i += step)
        {
            r.Add(i);
            if (r.Count > 100_000) throw JinjaException.Security("range too big (the sandbox allows at most 100000 items)");
        }
        return r;
    }
}
