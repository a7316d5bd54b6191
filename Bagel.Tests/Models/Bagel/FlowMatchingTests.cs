using Bagel.Core.Randomness;
using Bagel.Models.Bagel;
using Bagel.Tests.Models.FluxVae;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace Bagel.Tests.Models.Bagel;

/// <summary>Checks <see cref="FlowMatching"/> and the generation-path assembly against the reference's Bagel.forward
/// run with an identity language model (one clean image at t = −inf and one noisy image at raw t 0.37, shift 3, the
/// flow noise recorded from its torch.randn_like).</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // draws from or seeds torch's global generator
public sealed class FlowMatchingTests
{
    private const double Shift = 3.0;

    [Fact]
    public void Prepare_WithReplayedNoise_MatchesReferenceTimestepsAndNoisyLatents()
    {
        using Tensor x0 = GenerationPathFixture.Read("fixture.x0");
        using Tensor raw = GenerationPathFixture.Read("fixture.packed_timesteps");
        using Tensor noise = GenerationPathFixture.Read("fixture.flow_noise");
        using Tensor expectedT = GenerationPathFixture.Read("fixture.t");
        using Tensor expectedXt = GenerationPathFixture.Read("fixture.x_t");
        var random = new ReplayRandomSource([RecordedDraw.FromTensor(noise)]);
        using FlowMatchingInputs inputs = FlowMatching.Prepare(x0, raw, random, Shift);
        random.EnsureFullyConsumed();
        ReferenceFixtures.AssertClose(expectedT, inputs.Timesteps, 1e-6, "shifted timesteps");
        ReferenceFixtures.AssertClose(expectedXt, inputs.NoisyLatents, 1e-6, "x_t");
        using Tensor clean = inputs.NoisyLatents[..4];
        using Tensor cleanX0 = x0[..4];
        Assert.True(cleanX0.allclose(clean, rtol: 0, atol: 0), "clean tokens (t = 0) must keep x0 exactly");
        using Tensor target = noise - x0;
        Assert.True(target.allclose(inputs.Target, rtol: 0, atol: 0));
        using Tensor has = inputs.HasTarget();
        Assert.Equal(6, has.sum().item<long>());
    }

    [Fact]
    public void ShiftedTimesteps_ShiftOne_IsPlainSigmoid()
    {
        using Tensor raw = tensor(new[] { float.NegativeInfinity, -1f, 0f, 2f });
        using Tensor t = FlowMatching.ShiftedTimesteps(raw);
        using Tensor expected = raw.sigmoid();
        Assert.True(expected.allclose(t, rtol: 0, atol: 0));
        Assert.Equal(0f, t[0].item<float>());
    }

    [Fact]
    public void ReferenceForward_MseOfNoisyTokens_Matches()
    {
        using var scope = NewDisposeScope();
        Tensor x0 = GenerationPathFixture.Read("fixture.x0");
        Tensor raw = GenerationPathFixture.Read("fixture.packed_timesteps");
        Tensor noise = GenerationPathFixture.Read("fixture.flow_noise");
        Tensor positionIds = GenerationPathFixture.Read("fixture.packed_latent_position_ids");
        Tensor expectedMse = GenerationPathFixture.Read("fixture.mse");
        using var timeEmbedder = new TimestepEmbedder(GenerationPathFixture.HiddenSize);
        using Linear vae2llm = GenerationProjections.CreateVae2Llm(16, GenerationPathFixture.HiddenSize);
        using Linear llm2vae = GenerationProjections.CreateLlm2Vae(GenerationPathFixture.HiddenSize, 16);
        using var latentPosEmbed = new PositionEmbedding(GenerationPathFixture.MaxLatentSize, GenerationPathFixture.HiddenSize);
        GenerationPathFixture.LoadPrefixed(timeEmbedder, "time_embedder.");
        GenerationPathFixture.LoadPrefixed(vae2llm, "vae2llm.");
        GenerationPathFixture.LoadPrefixed(llm2vae, "llm2vae.");

        using FlowMatchingInputs inputs = FlowMatching.Prepare(x0, raw, new ReplayRandomSource([RecordedDraw.FromTensor(noise)]), Shift);
        // The token input; the reference's identity language model hands it back as the hidden state.
        Tensor hidden = vae2llm.forward(inputs.NoisyLatents) + timeEmbedder.forward(inputs.Timesteps) + latentPosEmbed.forward(positionIds);
        Tensor noisyRows = inputs.HasTarget().nonzero().squeeze(1);
        Tensor prediction = llm2vae.forward(hidden.index_select(0, noisyRows));
        Tensor mse = (prediction - inputs.Target.index_select(0, noisyRows)).square();
        ReferenceFixtures.AssertClose(expectedMse, mse, ReferenceFixtures.Float32Tolerance, "per-element MSE");
    }
}
