// An allow-list check of C# code (used for rewards/*.csx plugins) by walking the syntax and the semantic model.
// Allowed: types in a few namespaces (System, collections, LINQ, text, regex, globalization, numerics, Tasks), minus
// a deny list inside System (Environment, AppDomain, AppContext, Activator, GC, Console, Type and the runtime
// handles, Buffer), plus the plugin host types (RewardSample, RewardOutput, RewardGlobals) and whatever the code
// itself declares. Rejected: every other namespace (System.IO, System.Net, System.Diagnostics, System.Reflection,
// System.Runtime.*, System.Threading except CancellationToken and Tasks, Microsoft.*, the rest of PostTrain),
// `dynamic`, unsafe code (pointers, fixed, stackalloc, `unsafe`, `extern`), __makeref & co, and #r / #load.
// Each referenced symbol, each expression's type and each using directive is checked; one violation per offending
// construct (the outermost: nothing inside a reported node is reported again), with 1-based line and column.
// Simplification: this is a guard-rail for plugins the user wrote or reviewed, not a security boundary: in-process
// code can still loop forever or allocate without bound. Untrusted code belongs in the sandbox worker.
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace PostTrain.Rewards.Plugins;

public static class CSharpPolicy
{
    public static readonly IReadOnlySet<string> AllowedNamespaces = new HashSet<string>(StringComparer.Ordinal)
    {
        "System", "System.Collections", "System.Collections.Generic", "System.Collections.ObjectModel",
        "System.Linq", "System.Text", "System.Text.RegularExpressions", "System.Globalization", "System.Numerics",
        "System.Threading.Tasks",
    };

    public static readonly IReadOnlySet<string> AllowedTypes = new HashSet<string>(StringComparer.Ordinal)
    {
        "System.Threading.CancellationToken",
        typeof(RewardSample).FullName!, typeof(RewardOutput).FullName!, typeof(RewardGlobals).FullName!,
    };

    public static readonly IReadOnlySet<string> DeniedTypes = new HashSet<string>(StringComparer.Ordinal)
    {
        "System.Environment", "System.AppDomain", "System.AppContext", "System.Activator", "System.GC", "System.Console",
        "System.Type", "System.RuntimeTypeHandle", "System.RuntimeMethodHandle", "System.RuntimeFieldHandle",
        "System.ModuleHandle", "System.TypedReference", "System.ArgIterator", "System.Buffer",
    };

    public static readonly IReadOnlySet<string> DeniedMembers = new HashSet<string>(StringComparer.Ordinal)
    {
        "System.Delegate.DynamicInvoke", "System.Delegate.Method", "System.Delegate.CreateDelegate",
    };

    public static IReadOnlyList<PolicyViolation> Check(Compilation compilation) =>
        compilation.SyntaxTrees.SelectMany(t => Check(compilation.GetSemanticModel(t))).ToList();

    public static IReadOnlyList<PolicyViolation> Check(SemanticModel model)
    {
        var found = new List<PolicyViolation>();
        var reported = new List<Microsoft.CodeAnalysis.Text.TextSpan>();
        var root = model.SyntaxTree.GetRoot();

        foreach (var node in root.DescendantNodesAndSelf(descendIntoTrivia: true))
        {
            if (reported.Any(r => r.Contains(node.Span))) continue; // inside a construct already reported
            if (Construct(node) is { } construct) Record(construct.At.GetLocation() ?? node.GetLocation(), construct.Symbol, construct.Reason);
            switch (node)
            {
                case UsingDirectiveSyntax u when u.NamespaceOrType is { } name:
                    if (model.GetSymbolInfo(name).Symbol is { } used && Verdict(used) is { } why) Add(u, used.ToDisplayString(), why);
                    continue;
                case ExpressionSyntax e when !InsideUsing(e):
                    var info = model.GetSymbolInfo(e);
                    foreach (var symbol in info.Symbol is { } s ? [s] : info.CandidateSymbols)
                        if (Verdict(symbol) is { } reason) Add(e, symbol.ToDisplayString(), reason);
                    if (model.GetTypeInfo(e).Type is { } type && TypeVerdict(type) is { } typeReason) Add(e, type.ToDisplayString(), typeReason);
                    break;
            }
        }
        return found;

        // An expression or using directive: reported once, and nothing inside it is reported again.
        void Add(SyntaxNode node, string symbol, string reason)
        {
            if (reported.Any(r => r.Contains(node.Span))) return;
            reported.Add(node.Span);
            Record(node.GetLocation(), symbol, reason);
        }

        void Record(Location location, string symbol, string reason)
        {
            var pos = location.GetLineSpan();
            found.Add(new PolicyViolation(symbol, reason, pos.Path, pos.StartLinePosition.Line + 1, pos.StartLinePosition.Character + 1));
        }
    }

    private static bool InsideUsing(SyntaxNode node) => node.Ancestors().Any(a => a is UsingDirectiveSyntax);

    // Forbidden syntax, whatever it binds to; At is where to point (the keyword for modifiers).
    private static (string Symbol, string Reason, SyntaxNodeOrToken At)? Construct(SyntaxNode node)
    {
        switch (node)
        {
            case ReferenceDirectiveTriviaSyntax: return ("#r", "plugins cannot load assemblies", node);
            case LoadDirectiveTriviaSyntax: return ("#load", "plugins cannot load other files", node);
            case PointerTypeSyntax or FunctionPointerTypeSyntax: return (node.ToString(), "pointers are unsafe code", node);
            case FixedStatementSyntax: return ("fixed", "unsafe code", node);
            case UnsafeStatementSyntax: return ("unsafe", "unsafe code", node);
            case StackAllocArrayCreationExpressionSyntax or ImplicitStackAllocArrayCreationExpressionSyntax: return ("stackalloc", "unsafe code", node);
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
    private static string? Verdict(ISymbol symbol)
    {
        switch (symbol)
        {
            case INamespaceSymbol ns:
                return ns.IsGlobalNamespace || AllowedNamespaces.Contains(ns.ToDisplayString()) || ContainsAllowed(ns.ToDisplayString())
                    ? null : $"namespace {ns.ToDisplayString()} is not allowed";
            case ITypeSymbol type:
                return TypeVerdict(type);
            case IMethodSymbol or IPropertySymbol or IFieldSymbol or IEventSymbol:
                if (IsSource(symbol)) return null;
                var owner = symbol.ContainingType;
                if (owner is not null && DeniedMembers.Contains($"{owner.OriginalDefinition.ToDisplayString(Qualified)}.{symbol.Name}"))
                    return $"{owner.Name}.{symbol.Name} reaches reflection";
                if (owner is not null && TypeVerdict(owner) is { } ownerReason) return ownerReason;
                if (symbol is IMethodSymbol m)
                    foreach (var t in m.TypeArguments.Append(m.ReturnType))
                        if (TypeVerdict(t) is { } r) return r;
                return null;
            default:
                return null; // locals, parameters, labels, range variables: their types are checked as expressions
        }
    }

    private static string? TypeVerdict(ITypeSymbol type)
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
                return TypeVerdict(a.ElementType);
            case INamedTypeSymbol named:
                foreach (var arg in named.TypeArguments)
                    if (TypeVerdict(arg) is { } r) return r;
                if (IsSource(named)) return null;
                var outer = named.OriginalDefinition;
                while (outer.ContainingType is not null) outer = outer.ContainingType;
                var full = outer.ToDisplayString(Qualified);
                var ns = outer.ContainingNamespace?.ToDisplayString() ?? "";
                if (AllowedTypes.Contains(full)) return null;
                if (DeniedTypes.Contains(full)) return $"{full} is denied";
                return AllowedNamespaces.Contains(ns) ? null : $"namespace {ns} is not allowed";
            default:
                return null;
        }
    }

    private static bool IsSource(ISymbol symbol) => symbol.Locations.Any(l => l.IsInSource);

    // "System.Collections" holds the allowed "System.Collections.Generic", "PostTrain.Rewards.Plugins" the host
    // types: naming such a namespace is harmless (its other types are still checked where used).
    private static bool ContainsAllowed(string ns) =>
        AllowedNamespaces.Concat(AllowedTypes).Any(a => a.StartsWith(ns + ".", StringComparison.Ordinal));

    private static readonly SymbolDisplayFormat Qualified = new(
        typeQualificationStyle: SymbolDisplayTypeQualificationStyle.NameAndContainingTypesAndNamespaces,
        genericsOptions: SymbolDisplayGenericsOptions.None);
}
