// The bindable properties of a config record: public, settable (init is fine), base class first, each with
// its YAML key, whether C# marks it `required`, and whether it accepts null (nullable annotations).
using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.CompilerServices;

namespace PostTrain.Training.Recipes;

public sealed record ConfigProperty(string Key, PropertyInfo Property, bool Required, bool AcceptsNull)
{
    private static readonly ConcurrentDictionary<Type, IReadOnlyList<ConfigProperty>> Cache = new();

    public Type Type => Property.PropertyType;

    /// <summary>A config type is a class with a public parameterless constructor (records with init properties).</summary>
    public static bool IsSection(Type t) =>
        t.IsClass && t != typeof(string) && !t.IsArray && !IsList(t, out _) && !IsDictionary(t, out _)
        && t.GetConstructor(Type.EmptyTypes) is not null;

    public static IReadOnlyList<ConfigProperty> For(Type type) => Cache.GetOrAdd(type, static t =>
    {
        var chain = new List<Type>();
        for (var c = t; c is not null && c != typeof(object); c = c.BaseType) chain.Insert(0, c);
        var nullability = new NullabilityInfoContext();
        var result = new List<ConfigProperty>();
        foreach (var level in chain)
        {
            foreach (var p in level.GetProperties(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly))
            {
                if (p.SetMethod is not { IsPublic: true } || p.GetIndexParameters().Length > 0) continue;
                bool required = p.IsDefined(typeof(RequiredMemberAttribute));
                bool acceptsNull = Nullable.GetUnderlyingType(p.PropertyType) is not null
                    || (!p.PropertyType.IsValueType && nullability.Create(p).WriteState == NullabilityState.Nullable);
                result.Add(new ConfigProperty(KeyNames.Of(p), p, required, acceptsNull));
            }
        }
        var duplicate = result.GroupBy(r => r.Key).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new InvalidOperationException($"config type {t.Name}: two properties map to the key '{duplicate.Key}'");
        return result;
    });

    /// <summary>List&lt;T&gt;, IReadOnlyList&lt;T&gt;, IList&lt;T&gt;, IEnumerable&lt;T&gt; or T[].</summary>
    public static bool IsList(Type t, out Type element)
    {
        if (t.IsArray) { element = t.GetElementType()!; return true; }
        if (t.IsGenericType)
        {
            var def = t.GetGenericTypeDefinition();
            if (def == typeof(List<>) || def == typeof(IReadOnlyList<>) || def == typeof(IList<>)
                || def == typeof(IEnumerable<>) || def == typeof(IReadOnlyCollection<>))
            {
                element = t.GetGenericArguments()[0];
                return true;
            }
        }
        element = typeof(object);
        return false;
    }

    /// <summary>Dictionary&lt;string, T&gt; or IReadOnlyDictionary&lt;string, T&gt;.</summary>
    public static bool IsDictionary(Type t, out Type value)
    {
        if (t.IsGenericType && t.GetGenericArguments()[0] == typeof(string))
        {
            var def = t.GetGenericTypeDefinition();
            if (def == typeof(Dictionary<,>) || def == typeof(IReadOnlyDictionary<,>) || def == typeof(IDictionary<,>))
            {
                value = t.GetGenericArguments()[1];
                return true;
            }
        }
        value = typeof(object);
        return false;
    }
}
