// A compiled Jinja template rendered as transformers' apply_chat_template renders chat templates
// (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, {% generation %}, its tojson,
// raise_exception and strftime_now). Parse once, render many times; Render returns the text and the character
// spans that {% generation %} blocks produced.
namespace PostTrain.Data.Templates.Jinja;

public sealed record JinjaRender(string Text, IReadOnlyList<(int Start, int End)> GenerationSpans);

public sealed class JinjaTemplate
{
    private readonly List<Node> _nodes;

    private JinjaTemplate(string source, List<Node> nodes)
    {
        Source = source;
        _nodes = nodes;
        HasGenerationBlocks = ContainsGeneration(nodes);
    }

    public string Source { get; }

    /// <summary>Whether the template marks assistant text with {% generation %} ... {% endgeneration %}.</summary>
    public bool HasGenerationBlocks { get; }

    /// <summary>Parses <paramref name="source"/>; a syntax error is a JinjaException of kind syntax_error with its line.</summary>
    public static JinjaTemplate Parse(string source) => new(source, Parser.Parse(source));

    /// <summary>Renders with the given variables (values as in Values.cs); <paramref name="now"/> is strftime_now's clock.</summary>
    public JinjaRender Render(IReadOnlyDictionary<string, object?> variables, Func<DateTime>? now = null)
    {
        var globals = Globals.Create(now ?? (() => DateTime.Now));
        var vars = new Scope(globals);
        foreach (var (k, v) in variables) vars.Set(k, v);
        var (text, spans) = Interpreter.Run(_nodes, vars);
        return new JinjaRender(text, spans);
    }

    private static bool ContainsGeneration(IEnumerable<Node> nodes) => nodes.Any(n => n switch
    {
        GenerationNode => true,
        IfNode i => i.Branches.Any(b => ContainsGeneration(b.Body)) || (i.Else is not null && ContainsGeneration(i.Else)),
        ForNode f => ContainsGeneration(f.Body) || (f.Else is not null && ContainsGeneration(f.Else)),
        MacroNode m => ContainsGeneration(m.Body),
        WithNode w => ContainsGeneration(w.Body),
        FilterBlockNode fb => ContainsGeneration(fb.Body),
        CallBlockNode cb => ContainsGeneration(cb.Body),
        SetBlockNode sb => ContainsGeneration(sb.Body),
        _ => false,
    });
}
