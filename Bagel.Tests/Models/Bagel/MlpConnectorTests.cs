using Bagel.Models.Bagel;
using Bagel.Tests.Models.FluxVae;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Bagel.Tests.Models.Bagel;

/// <summary>Checks <see cref="MlpConnector"/> against the reference's MLPconnector with "gelu_pytorch_tanh".</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // draws from or seeds torch's global generator
public sealed class MlpConnectorTests
{
    [Fact]
    public void Forward_WithReferenceWeights_MatchesReference()
    {
        using var connector = new MlpConnector(12, GenerationPathFixture.HiddenSize);
        var report = GenerationPathFixture.LoadPrefixed(connector, "connector.");
        Assert.Equal(4, report.LoadedKeys.Count);
        using Tensor input = GenerationPathFixture.Read("fixture.connector_in");
        using Tensor expected = GenerationPathFixture.Read("fixture.connector_out");
        using Tensor actual = connector.forward(input);
        ReferenceFixtures.AssertClose(expected, actual, ReferenceFixtures.Float32Tolerance, "connector output");
    }
}
