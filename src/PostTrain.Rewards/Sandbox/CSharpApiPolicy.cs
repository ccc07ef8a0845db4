// The C# allow-list, enforced on the semantic model: every name, member access, invocation, object creation and
// expression type in the program is resolved to a symbol and checked. A type is allowed when the program
// declares it, when its full name is in AllowedTypes, or when its namespace is in AllowedNamespaces and it is
// not in DeniedTypes; a member of an allowed type can still be denied (MemberRules). Syntax that needs no
// symbol to be dangerous is rejected outright: #r/#load, unsafe, pointers, extern, fixed, __arglist/__makeref,
// finalizers. Simplification: conservative, so `nameof(System.IO.File)` is rejected too.
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace PostTrain.Rewards.Sandbox;

internal static class CSharpApiPolicy
{
    private static readonly HashSet<string> AllowedNamespaces =
    [
        "System", "System.Collections", "System.Collections.Generic", "System.Collections.Concurrent",
        "System.Collections.Immutable", "System.Collections.ObjectModel", "System.Collections.Specialized",
        "System.Linq", "System.Text", "System.Text.RegularExpressions", "System.Numerics", "System.Globalization",
        "System.Threading.Tasks", "System.Buffers", "System.Diagnostics.CodeAnalysis",
    ];

    private static readonly HashSet<string> AllowedTypes =
    [
        "System.IO.TextReader", "System.IO.TextWriter", "System.IO.StringReader", "System.IO.StringWriter",
        "System.IO.IOException", "System.IO.EndOfStreamException", "System.IO.InvalidDataException",
        "System.Threading.CancellationToken", "System.Threading.CancellationTokenSource", "System.Threading.Interlocked",
        "System.Threading.Volatile", "System.Threading.Lock",
        "System.Diagnostics.Stopwatch",
        "System.Runtime.CompilerServices.MethodImplAttribute", "System.Runtime.CompilerServices.MethodImplOptions",
    ];

    private static readonly HashSet<string> DeniedTypes =
    [
        "System.Environment", "System.AppDomain", "System.AppContext", "System.GC", "System.GCMemoryInfo",
        "System.Activator", "System.TypedReference", "System.ArgIterator", "System.RuntimeArgumentHandle",
        "System.RuntimeTypeHandle", "System.RuntimeMethodHandle", "System.RuntimeFieldHandle", "System.ModuleHandle",
        "System.AppDomainSetup", "System.LoaderOptimizationAttribute", "System.Linq.Queryable", "System.Linq.IQueryable",
        "System.Linq.EnumerableQuery", "System.Threading.Tasks.TaskScheduler",
    ];

    /// <summary>Members allowed on types where only a few are safe (Type: no reflection; Console: no raw streams).</summary>
    private static readonly Dictionary<string, HashSet<string>> AllowedMembersOnly = new()
    {
        ["System.Type"] = ["Name", "FullName", "Namespace", "ToString", "Equals", "GetHashCode", "IsArray", "IsValueType",
            "IsEnum", "IsGenericType", "IsPrimitive", "IsClass", "IsInterface", "IsAbstract", "IsSealed",
            "op_Equality", "op_Inequality"],
        ["System.Console"] = ["Write", "WriteLine", "Read", "ReadLine", "In", "Out", "Error"],
        // Type inherits Name and friends from MemberInfo; the reflection type itself stays denied as a value.
        ["System.Reflection.MemberInfo"] = ["Name", "ToString", "Equals", "GetHashCode"],
    };

    /// <summary>Members denied on otherwise allowed types.</summary>
    private static readonly Dictionary<string, HashSet<string>> DeniedMembers = new()
    {
        ["System.Delegate"] = ["DynamicInvoke", "CreateDelegate", "Method", "Target"],
        ["System.MulticastDelegate"] = ["DynamicInvoke", "CreateDelegate", "Method", "Target"],
        ["System.Globalization.CultureInfo"] = ["DefaultThreadCurrentCulture", "DefaultThreadCurrentUICulture"],
        ["System.Text.Encoding"] = ["RegisterProvider"],
        ["System.Text.RegularExpressions.Regex"] = ["CompileToAssembly", "CacheSize"],
        ["System.Threading.Tasks.Task"] = ["Factory"],
        ["System.Exception"] = ["TargetSite"],
    };

    /// <summary>Every violation found, each naming the construct or symbol and its line; empty when allowed.</summary>
    public static IReadOnlyList<string> Check(SyntaxTree tree, SemanticModel model, CancellationToken ct)
    {
        var violations = new List<string>();
        var root = tree.GetRoot(ct);
        void AddAt(Location? at, string what)
        {
            var message = $"{what} (line {at?.GetLineSpan().StartLinePosition.Line + 1})";
            if (!violations.Contains(message)) violations.Add(message);
        }
        void Add(SyntaxNodeOrToken at, string what) => AddAt(at.GetLocation(), what);

        // A directive is trivia of the token after it (on a later line): report the directive's own line.
        foreach (var trivia in root.DescendantTrivia(descendIntoTrivia: true))
        {
            if (trivia.IsKind(SyntaxKind.ReferenceDirectiveTrivia)) AddAt(trivia.GetLocation(), "#r directive");
            if (trivia.IsKind(SyntaxKind.LoadDirectiveTrivia)) AddAt(trivia.GetLocation(), "#load directive");
        }
        foreach (var token in root.DescendantTokens())
        {
            switch (token.Kind())
            {
                case SyntaxKind.UnsafeKeyword: Add(token, "unsafe code"); break;
                case SyntaxKind.ExternKeyword: Add(token, "extern"); break;
                case SyntaxKind.FixedKeyword: Add(token, "fixed"); break;
                case SyntaxKind.ArgListKeyword: Add(token, "__arglist"); break;
                case SyntaxKind.MakeRefKeyword: Add(token, "__makeref"); break;
                case SyntaxKind.RefTypeKeyword: Add(token, "__reftype"); break;
                case SyntaxKind.RefValueKeyword: Add(token, "__refvalue"); break;
            }
        }
        foreach (var node in root.DescendantNodes())
        {
            ct.ThrowIfCancellationRequested();
            switch (node)
            {
                case PointerTypeSyntax or FunctionPointerTypeSyntax:
                    Add(node, "pointer type (unsafe code)");
                    continue;
                case DestructorDeclarationSyntax:
                    Add(node, "finalizer");
                    continue;
            }
            var info = model.GetSymbolInfo(node, ct);
            if (info.Symbol is { } symbol) CheckSymbol(symbol, node, Add);
            foreach (var candidate in info.CandidateSymbols) CheckSymbol(candidate, node, Add);
            if (node is ExpressionSyntax)
            {
                var type = model.GetTypeInfo(node, ct);
                if (type.Type is { } t) CheckType(t, node, Add);
                if (type.ConvertedType is { } c) CheckType(c, node, Add);
            }
            if (node is VariableDeclaratorSyntax or ParameterSyntax or SingleVariableDesignationSyntax
                && model.GetDeclaredSymbol(node, ct) is { } declared)
                CheckSymbol(declared, node, Add);
        }
        return violations;
    }

    private static void CheckSymbol(ISymbol symbol, SyntaxNode at, Action<SyntaxNodeOrToken, string> add)
    {
        switch (symbol)
        {
            case IAliasSymbol alias:
                CheckSymbol(alias.Target, at, add);
                break;
            case ITypeSymbol type:
                CheckType(type, at, add);
                break;
            case IMethodSymbol method:
                method = method.ReducedFrom ?? method;
                CheckMember(method, method.ContainingType, at, add);
                foreach (var arg in method.TypeArguments) CheckType(arg, at, add);
                CheckType(method.ReturnType, at, add);
                foreach (var p in method.Parameters) CheckType(p.Type, at, add);
                break;
            case IPropertySymbol property:
                CheckMember(property, property.ContainingType, at, add);
                CheckType(property.Type, at, add);
                break;
            case IFieldSymbol field:
                CheckMember(field, field.ContainingType, at, add);
                CheckType(field.Type, at, add);
                break;
            case IEventSymbol e:
                CheckMember(e, e.ContainingType, at, add);
                CheckType(e.Type, at, add);
                break;
            case ILocalSymbol local:
                CheckType(local.Type, at, add);
                break;
            case IParameterSymbol parameter:
                CheckType(parameter.Type, at, add);
                break;
        }
    }

    private static void CheckMember(ISymbol member, INamedTypeSymbol? owner, SyntaxNode at, Action<SyntaxNodeOrToken, string> add)
    {
        if (owner is null) return;
        var ownerName = FullName(Outermost(owner.OriginalDefinition));
        var name = member is IMethodSymbol { AssociatedSymbol: { } associated } ? associated.Name : member.Name;
        if (AllowedMembersOnly.TryGetValue(ownerName, out var allowed))
        {
            if (!allowed.Contains(name)) add(at, $"forbidden API {ownerName}.{name}");
            return;
        }
        CheckType(owner, at, add);
        if (DeniedMembers.TryGetValue(ownerName, out var denied) && denied.Contains(name))
            add(at, $"forbidden API {ownerName}.{name}");
    }

    private static void CheckType(ITypeSymbol type, SyntaxNode at, Action<SyntaxNodeOrToken, string> add)
    {
        switch (type)
        {
            case IArrayTypeSymbol array:
                CheckType(array.ElementType, at, add);
                return;
            case IPointerTypeSymbol or IFunctionPointerTypeSymbol:
                add(at, "pointer type (unsafe code)");
                return;
            case IDynamicTypeSymbol:
                add(at, "dynamic");
                return;
            case INamedTypeSymbol named:
                if (named.TypeKind == TypeKind.Error) return;
                foreach (var arg in named.TypeArguments) CheckType(arg, at, add);
                var definition = Outermost(named.OriginalDefinition);
                if (definition.Locations.Any(l => l.IsInSource)) return;
                var full = FullName(definition);
                var ns = definition.ContainingNamespace?.ToDisplayString() ?? "";
                var ok = AllowedTypes.Contains(full) || (AllowedNamespaces.Contains(ns) && !DeniedTypes.Contains(full));
                if (!ok) add(at, $"forbidden API {full}");
                return;
        }
    }

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
}
