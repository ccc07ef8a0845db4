// Names a config property (or enum member) in recipe YAML when the automatic snake_case name is not wanted.
namespace PostTrain.Training.Recipes;

/// <summary>The YAML key of a config property or enum member, e.g. <c>[RecipeKey("lr")]</c> on
/// <c>LearningRate</c>. Without it the key is the snake_case form of the C# name.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class RecipeKeyAttribute(string key) : Attribute
{
    public string Key { get; } = key;
}
