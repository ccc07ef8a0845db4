// The one C# API checker, for reward plugins and for untrusted programs alike; what each may use is a CSharpAllowList.
// It works on the semantic model, not the text: every syntax node (names, member accesses, invocations, creations,
// attributes, query clauses), every expression's type and converted type, and every declared local or parameter
// is resolved to a symbol and checked against the list (a member also by its containing type, a method also by its
// type arguments, return and parameter types). Syntax that needs no symbol to be dangerous is rejected outright:
// #r / #load, unsafe (blocks, modifiers, pointers, fixed, stackalloc unless the list allows it), extern, __arglist,
// __makeref, __reftype, __refvalue, finalizers. A using directive is checked as a namespace (one that holds an
// allowed type, like System.IO for TextReader, may be named; its types are checked where used).
// Reporting: one violation per offending construct, the outermost (nothing inside a reported node is reported
// again), with 1-based line and column. Simplification: conservative, so `nameof(System.IO.File)` is rejected too.
// It is a guard-rail for plugins (trusted code in the trainer process) and the first of several layers for
// untrusted programs, which then run in the sandbox worker process (Sandbox/README.md).
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Text;

namespace PostTrain.Rewards.Policy;

public static class CSharpApiPolicy
{
    /// <summary>Every violation in every syntax tree of <paramref name="compilation"/>; empty when allowed.</summary>
    public static IReadOnlyList<PolicyViolation> Check(Compilation compilation, CSharpAllowList allow, CancellationToken ct = default) =>
        [.. compilation.SyntaxTrees.SelectMany(t => Check(compilation.GetSemanticModel(t), allow, ct))];

    /// <summary>Every violation in <paramref name="model"/>'s syntax tree, in source order of the walk.</summary>
    public static IReadOnlyList<PolicyViolation> Check(SemanticModel model, CSharpAllowList allow, CancellationToken ct = default)
    {
        var found = new List<PolicyViolation>();
        var reported = new List<TextSpan>();
        var root = model.SyntaxTree.GetRoot(ct);
        bool Inside(TextSpan span) => reported.Any(r => r.Contains(span));

        // A construct reported at `at`; with suppress, nothing inside `at` is reported again.
        void Add(Location location, string symbol, string reason, bool suppress)
        {
            if (Inside(location.SourceSpan)) return;
            if (suppress) reported.Add(location.SourceSpan);
            var pos = location.GetLineSpan();
            var v = new PolicyViolation(symbol, reason, pos.Path, pos.StartLinePosition.Line + 1, pos.StartLinePosition.Character + 1);
            if (!found.Contains(v)) found.Add(v);
        }
        void AddSymbol(SyntaxNodeOrToken at, ISymbol symbol, Func<ISymbol, string?> verdict)
        {
            if (verdict(symbol) is { } reason) Add(at.GetLocation()!, Display(symbol), reason, suppress: true);
        }

        foreach (var token in root.DescendantTokens(descendIntoTrivia: true))
            if (KeywordReason(token) is { } keyword) Add(token.GetLocation(), token.Text, keyword, suppress: false);

        foreach (var node in root.DescendantNodesAndSelf(descendIntoTrivia: true))
        {
            ct.ThrowIfCancellationRequested();
            if (Inside(node.Span)) continue;
            if (Construct(node, allow) is { } construct)
            {
                Add(construct.At.GetLocation()!, construct.Symbol, construct.Reason, suppress: construct.At.IsNode);
                if (construct.At.IsNode) continue;
            }
            if (node is UsingDirectiveSyntax { NamespaceOrType: { } name } u)
            {
                if (model.GetSymbolInfo(name, ct).Symbol is { } used) AddSymbol(u, used, s => Verdict(s, allow));
                continue;
            }
            if (node.Ancestors().Any(a => a is UsingDirectiveSyntax)) continue;
            var info = model.GetSymbolInfo(node, ct);
            foreach (var symbol in info.Symbol is { } s ? [s] : info.CandidateSymbols)
                AddSymbol(node, symbol, x => Verdict(x, allow));
            if (node is ExpressionSyntax)
            {
                var type = model.GetTypeInfo(node, ct);
                if (type.Type is { } t) AddSymbol(node, t, x => TypeVerdict((ITypeSymbol)x, allow));
                if (type.ConvertedType is { } c && !SymbolEqualityComparer.Default.Equals(c, type.Type))
                    AddSymbol(node, c, x => TypeVerdict((ITypeSymbol)x, allow));
            }
            // A declared local or parameter: its type, reported at its name (an implicitly typed `var` hides it).
            var (declared, identifier) = node switch
            {
                VariableDeclaratorSyntax d => (model.GetDeclaredSymbol(d, ct), d.Identifier),
                ParameterSyntax p => (model.GetDeclaredSymbol(p, ct), p.Identifier),
                SingleVariableDesignationSyntax v => (model.GetDeclaredSymbol(v, ct), v.Identifier),
                _ => (null, default),
            };
            if (declared is ILocalSymbol or IParameterSymbol or IFieldSymbol)
                AddSymbol(identifier, declared, x => TypeVerdict(TypeOf(x)!, allow));
        }
        return found;
    }

    private static ITypeSymbol? TypeOf(ISymbol symbol) => symbol switch
    {
        ILocalSymbol l => l.Type,
        IParameterSymbol p => p.Type,
        IFieldSymbol f => f.Type,
        _ => null,
    };

    private static string? KeywordReason(SyntaxToken token) => token.Kind() switch
    {
        SyntaxKind.UnsafeKeyword or SyntaxKind.FixedKeyword => "unsafe code",
        SyntaxKind.ExternKeyword => "native code",
        SyntaxKind.ArgListKeyword or SyntaxKind.MakeRefKeyword or SyntaxKind.RefTypeKeyword or SyntaxKind.RefValueKeyword =>
            "undocumented runtime features",
        _ => null,
    };

    // Forbidden syntax, whatever it binds to; At is where to point (the keyword for modifiers, else the node).
    private static (string Symbol, string Reason, SyntaxNodeOrToken At)? Construct(SyntaxNode node, CSharpAllowList allow)
    {
        switch (node)
        {
            case ReferenceDirectiveTriviaSyntax: return ("#r", "loads assemblies", node);
            case LoadDirectiveTriviaSyntax: return ("#load", "loads other source files", node);
            case PointerTypeSyntax or FunctionPointerTypeSyntax: return (node.ToString(), "pointers are unsafe code", node);
            case FixedStatementSyntax: return ("fixed", "unsafe code", node);
            case UnsafeStatementSyntax: return ("unsafe", "unsafe code", node);
            case DestructorDeclarationSyntax: return ("finalizer", "runs on the finalizer thread", node);
            case StackAllocArrayCreationExpressionSyntax or ImplicitStackAllocArrayCreationExpressionSyntax when !allow.AllowStackalloc:
                return ("stackalloc", "unsafe code", node);
            case MakeRefExpressionSyntax or RefTypeExpressionSyntax or RefValueExpressionSyntax:
                return (node.GetFirstToken().Text, "undocumented runtime features", node);
        }
        var modifiers = node switch
        {
            MemberDeclarationSyntax m => m.Modifiers,
            LocalFunctionStatementSyntax f => f.Modifiers,
            _ => default,
        };
        foreach (var m in modifiers)
        {
            if (m.IsKind(SyntaxKind.UnsafeKeyword)) return ("unsafe", "unsafe code", m);
            if (m.IsKind(SyntaxKind.ExternKeyword)) return ("extern", "native code", m);
        }
        return null;
    }

    // Why a symbol is forbidden, or null when it is allowed.
    private static string? Verdict(ISymbol symbol, CSharpAllowList allow)
    {
        switch (symbol)
        {
            case IAliasSymbol alias:
                return Verdict(alias.Target, allow);
            case INamespaceSymbol ns:
                var name = ns.ToDisplayString();
                return ns.IsGlobalNamespace || allow.AllowedNamespaces.Contains(name) || HoldsAllowed(name, allow)
                    ? null : $"namespace {name} is not allowed";
            case ITypeSymbol type:
                return TypeVerdict(type, allow);
            case IMethodSymbol or IPropertySymbol or IFieldSymbol or IEventSymbol:
                if (IsSource(symbol)) return null;
                if (symbol is IMethodSymbol { ReducedFrom: { } reduced }) symbol = reduced;
                if (symbol.ContainingType is { } owner)
                {
                    var ownerName = FullName(Outermost(owner.OriginalDefinition));
                    var member = symbol is IMethodSymbol { AssociatedSymbol: { } associated } ? associated.Name : symbol.Name;
                    if (allow.AllowedMembersOnly.TryGetValue(ownerName, out var only))
                    {
                        if (!only.Contains(member)) return $"only some members of {ownerName} are allowed";
                    }
                    else
                    {
                        if (allow.DeniedMembers.TryGetValue(ownerName, out var denied) && denied.Contains(member))
                            return $"{ownerName}.{member} is denied";
                        if (TypeVerdict(owner, allow) is { } ownerReason) return ownerReason;
                    }
                }
                IEnumerable<ITypeSymbol> types = symbol switch
                {
                    IMethodSymbol m => m.TypeArguments.Append(m.ReturnType).Concat(m.Parameters.Select(p => p.Type)),
                    IPropertySymbol p => [p.Type],
                    IFieldSymbol f => [f.Type],
                    IEventSymbol e => [e.Type],
                    _ => [],
                };
                foreach (var t in types)
                    if (TypeVerdict(t, allow) is { } r) return r;
                return null;
            default:
                return null; // locals, parameters, labels, range variables: their types are checked where declared and used
        }
    }

    private static string? TypeVerdict(ITypeSymbol type, CSharpAllowList allow)
    {
        switch (type)
        {
            case IErrorTypeSymbol or ITypeParameterSymbol:
                return null;
            case IDynamicTypeSymbol:
                return "dynamic binds through reflection";
            case IPointerTypeSymbol or IFunctionPointerTypeSymbol:
                return "pointers are unsafe code";
            case IArrayTypeSymbol a:
                return TypeVerdict(a.ElementType, allow);
            case INamedTypeSymbol named:
                foreach (var arg in named.TypeArguments)
                    if (TypeVerdict(arg, allow) is { } r) return r;
                if (named.TypeKind == TypeKind.Error) return null;
                var outer = Outermost(named.OriginalDefinition);
                if (IsSource(outer)) return null;
                var full = FullName(outer);
                var ns = outer.ContainingNamespace?.ToDisplayString() ?? "";
                if (allow.AllowedTypes.Contains(full)) return null;
                if (allow.DeniedTypes.Contains(full)) return $"{full} is denied";
                return allow.AllowedNamespaces.Contains(ns) ? null : $"namespace {ns} is not allowed";
            default:
                return null;
        }
    }

    private static bool IsSource(ISymbol symbol) => symbol.Locations.Any(l => l.IsInSource);

    private static INamedTypeSymbol Outermost(INamedTypeSymbol type)
    {
        while (type.ContainingType is { } outer) type = outer;
        return type;
    }

    private static string FullName(INamedTypeSymbol type)
    {
        var ns = type.ContainingNamespace is { IsGlobalNamespace: false } n ? n.ToDisplayString() + "." : "";
        return ns + type.MetadataName.Split('`')[0];
    }

    // A reduced extension method displays as its receiver's call; name it by its declaring type instead.
    private static string Display(ISymbol symbol) => symbol is IMethodSymbol { ReducedFrom: { } reduced } ? reduced.ToDisplayString() : symbol.ToDisplayString();

    // "System.Collections" holds the allowed "System.Collections.Generic", "PostTrain.Rewards.Plugins" the host
    // types, "System.IO" the allowed TextReader: naming such a namespace is harmless (its types are checked where used).
    private static bool HoldsAllowed(string ns, CSharpAllowList allow) =>
        allow.AllowedNamespaces.Concat(allow.AllowedTypes).Any(a => a.StartsWith(ns + ".", StringComparison.Ordinal));
}
