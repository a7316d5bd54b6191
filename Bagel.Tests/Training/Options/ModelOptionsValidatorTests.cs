using Bagel.Training.Options;

namespace Bagel.Tests.Training.Options;

/// <summary>Model flags the reference has but this library does not implement are refused by name, never ignored.</summary>
public sealed class ModelOptionsValidatorTests
{
    [Fact]
    public void UnimplementedModelVariantsAreRefusedTogetherWithTheirFlagNames()
    {
        TrainingConfiguration config = ReferenceCommandLine.Bind(["--tie_word_embeddings", "--vit_rope", "True", "--connector_act", "gelu"]);

        IReadOnlyList<string> failures = config.Validate();

        Assert.Equal(3, failures.Count);
        Assert.StartsWith("'connector_act' is 'gelu'; it must be one of 'gelu_pytorch_tanh'", failures[0], StringComparison.Ordinal);
        Assert.StartsWith("'tie_word_embeddings' is true;", failures[1], StringComparison.Ordinal);
        Assert.StartsWith("'vit_rope' is true;", failures[2], StringComparison.Ordinal);
        Assert.Empty(ReferenceCommandLine.Bind(["--no_llm_qk_norm", "--tie_word_embeddings", "False", "--vit_rope", "False"]).Validate());
    }
}
