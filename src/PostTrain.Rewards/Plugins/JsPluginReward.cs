// A reward written in JavaScript (rewards/*.js), run by Jint.
//
// Contract: the file defines `function reward(sample, options)`; sample = {prompt, completion, columns: {...}} (the
// dataset row's other columns, as JSON values), options = the recipe's options object ({} when none). It returns a
// number, null/undefined (= not applicable), or {score, reason, metrics} with score a number or null, reason a
// string and metrics an object of numbers.
//
// Plugin limits: an engine from LimitedJint with JavaScriptLimits (default: the plugin limits: statements, time,
// memory, recursion, array size, regex time) per call, no CLR access. State: a FRESH engine per
// call (the prepared script is parsed once and re-run in each engine, ~0.1-0.3 ms): nothing a call does can leak
// into the next sample, and calls run in parallel safely. eval and new Function(code) are off: a plugin cannot run a
// model's output as code in the trainer process (untrusted programs run in the sandbox worker, the `code` reward).
// Errors: syntax errors and top-level throws fail loading (RewardConfigException "file:line:col: ..."); a throw inside
// reward() is a PluginException "file:line:col: message"; hitting the time or statement limit is a
// RewardTimeoutException (the runner counts a timeout), other limits a PluginException.
using JsonSerializer = System.Text.Json.JsonSerializer;
using Acornima;
using Jint;
using Jint.Native;
using Jint.Native.Json;
using Jint.Runtime;
using PostTrain.Rewards.Policy;

namespace PostTrain.Rewards.Plugins;

public sealed class JsPluginReward : IReward
{
    private readonly Prepared<Acornima.Ast.Script> _script;
    private readonly string _path;
    private readonly string _optionsJson;
    private readonly JavaScriptLimits _limits;

    private JsPluginReward(string path, Prepared<Acornima.Ast.Script> script, string optionsJson, JavaScriptLimits limits)
    {
        (_path, _script, _optionsJson, _limits) = (path, script, optionsJson, limits);
        Name = Path.GetFileNameWithoutExtension(path);
    }

    public string Name { get; }

    public static JsPluginReward Load(string path, IReadOnlyDictionary<string, object?>? options = null, JavaScriptLimits? limits = null)
    {
        if (!File.Exists(path)) throw new RewardConfigException($"{path}: plugin file not found");
        var source = File.ReadAllText(path);
        Prepared<Acornima.Ast.Script> script;
        try
        {
            script = Engine.PrepareScript(source, path);
        }
        catch (ScriptPreparationException e) when (e.InnerException is ParseErrorException p)
        {
            throw new RewardConfigException($"{PluginException.Where(path, p.LineNumber, p.Column + 1)}syntax error: {p.Description}", e);
        }
        var reward = new JsPluginReward(path, script, JsonSerializer.Serialize(options ?? RewardInput.NoColumns), limits ?? new JavaScriptLimits());
        try
        {
            var engine = reward.NewEngine(CancellationToken.None);
            if (engine.GetValue("reward") is not Jint.Native.Function.Function)
                throw new RewardConfigException($"{path}: defines no function reward(sample, options)");
        }
        catch (PluginException e)
        {
            throw new RewardConfigException(e.Message, e);
        }
        return reward;
    }

    public RewardResult Score(RewardInput input, CancellationToken cancellationToken)
    {
        var engine = NewEngine(cancellationToken);
        return Guard(() =>
        {
            var parser = new JsonParser(engine);
            var sample = parser.Parse(JsonSerializer.Serialize(new Dictionary<string, object?>
            {
                ["prompt"] = input.Prompt,
                ["completion"] = input.Completion,
                ["columns"] = input.Columns,
            }));
            var value = engine.Invoke("reward", sample, parser.Parse(_optionsJson));
            return ToResult(value);
        });
    }

    private Engine NewEngine(CancellationToken cancellationToken)
    {
        var engine = LimitedJint.Create(_limits, cancellationToken);
        Guard(() => engine.Execute(_script));
        return engine;
    }

    private RewardResult ToResult(JsValue v)
    {
        if (v.IsNull() || v.IsUndefined()) return RewardResult.NotApplicable("reward() returned null");
        if (v.IsNumber()) return new RewardResult(Finite(v.AsNumber()));
        if (v is not JsObject o || v.IsArray())
            throw Contract($"got {(v.IsArray() ? "an array" : v.Type.ToString().ToLowerInvariant())}");
        var score = o.Get("score");
        double? s = score.IsNull() || score.IsUndefined() ? null : score.IsNumber() ? Finite(score.AsNumber()) : throw Contract("score must be a number or null");
        var reasonValue = o.Get("reason");
        var reason = reasonValue.IsUndefined() || reasonValue.IsNull() ? null : reasonValue.IsString() ? reasonValue.AsString() : throw Contract("reason must be a string");
        var metricsValue = o.Get("metrics");
        Dictionary<string, double>? metrics = null;
        if (!metricsValue.IsUndefined() && !metricsValue.IsNull())
        {
            if (metricsValue is not JsObject mo || metricsValue.IsArray()) throw Contract("metrics must be an object of numbers");
            metrics = [];
            foreach (var key in mo.GetOwnPropertyKeys())
            {
                var m = mo.Get(key);
                metrics[key.ToString()] = m.IsNumber() ? m.AsNumber() : throw Contract($"metric '{key}' is not a number");
            }
        }
        return new RewardResult(s, reason, metrics);
    }

    private double Finite(double x) => double.IsFinite(x) ? x : throw Contract($"score is {x}");

    private PluginException Contract(string what) =>
        new(_path, null, $"reward() must return a number, null or {{score, reason, metrics}}: {what}");

    private T Guard<T>(Func<T> body)
    {
        try
        {
            return body();
        }
        catch (JavaScriptException e)
        {
            throw new PluginException(_path, e.Location.Start.Line, $"{e.Message}", e);
        }
        catch (StatementsCountOverflowException e)
        {
            throw new RewardTimeoutException($"{_path}: stopped after {_limits.MaxStatements} statements (MaxStatements)", e);
        }
        catch (TimeoutException e) when (e is not RewardTimeoutException)
        {
            throw new RewardTimeoutException($"{_path}: stopped after {_limits.Timeout.TotalMilliseconds:0} ms (TimeoutInterval)", e);
        }
        catch (ExecutionCanceledException e)
        {
            throw new RewardTimeoutException($"{_path}: cancelled by the runner's time limit", e);
        }
        catch (MemoryLimitExceededException e)
        {
            throw new PluginException(_path, null, $"memory limit: {e.Message}", e);
        }
        catch (RecursionDepthOverflowException e)
        {
            throw new PluginException(_path, null, $"recursion deeper than {_limits.MaxRecursion} (LimitRecursion): {e.Message}", e);
        }
        catch (JintException e)
        {
            throw new PluginException(_path, null, e.Message, e);
        }
    }
}
