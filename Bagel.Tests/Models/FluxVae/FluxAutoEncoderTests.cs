using Bagel.Core.Batching;
using Bagel.Core.Randomness;
using Bagel.Core.SafeTensors;
using Bagel.Core.StateDicts;
using Bagel.Models.FluxVae;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Bagel.Tests.Models.FluxVae;

/// <summary>Checks the FLUX autoencoder against the reference's own modeling/autoencoder.py on a tiny configuration
/// (weights, images, posterior noise and outputs recorded by Fixtures/FluxVae/make_fixtures.py).</summary>
public sealed class FluxAutoEncoderTests
{
    [Fact]
    public void Load_FillsEveryTensorByReferenceName_AndFreezes()
    {
        using FluxAutoEncoder vae = ReferenceFixtures.LoadTinyVae();
        using SafeTensorsReader reader = SafeTensorsReader.Open(ReferenceFixtures.TinyWeights);
        var moduleKeys = vae.state_dict().Keys.Order(StringComparer.Ordinal).ToArray();
        var fileKeys = reader.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(fileKeys, moduleKeys);
        Assert.Contains("encoder.down.1.block.0.nin_shortcut.weight", moduleKeys);
        Assert.Contains("decoder.mid.attn_1.proj_out.bias", moduleKeys);
        Assert.Contains("decoder.up.1.upsample.conv.weight", moduleKeys);
        Assert.All(vae.parameters(), p => Assert.False(p.requires_grad));
        Assert.False(vae.training);
        using Tensor fileWeight = reader.ReadTensor("decoder.up.0.block.0.nin_shortcut.weight", ScalarType.Float32);
        Tensor loaded = vae.state_dict()["decoder.up.0.block.0.nin_shortcut.weight"];
        Assert.Equal(ScalarType.Float32, loaded.dtype);
        Assert.True(fileWeight.allclose(loaded, rtol: 0, atol: 0));
    }

    [Fact]
    public void EncodeMoments_MatchReference()
    {
        using FluxAutoEncoder vae = ReferenceFixtures.LoadTinyVae();
        using Tensor images = ReferenceFixtures.Read(ReferenceFixtures.TinyIo, "padded_images");
        using Tensor expected = ReferenceFixtures.Read(ReferenceFixtures.TinyIo, "moments");
        using Tensor moments = vae.EncodeMoments(images);
        ReferenceFixtures.AssertClose(expected, moments, ReferenceFixtures.Float32Tolerance, "encoder moments");
    }

    [Fact]
    public void Encode_SampledPosteriorWithReplayedNoise_MatchesReference()
    {
        using FluxAutoEncoder vae = ReferenceFixtures.LoadTinyVae();
        using Tensor images = ReferenceFixtures.Read(ReferenceFixtures.TinyIo, "padded_images");
        using Tensor noise = ReferenceFixtures.Read(ReferenceFixtures.TinyIo, "posterior_noise");
        using Tensor expected = ReferenceFixtures.Read(ReferenceFixtures.TinyIo, "z");
        var random = new ReplayRandomSource([RecordedDraw.FromTensor(noise)]);
        using Tensor z = vae.Encode(images, random);
        random.EnsureFullyConsumed();
        Assert.Equal(ScalarType.Float32, z.dtype);
        ReferenceFixtures.AssertClose(expected, z, ReferenceFixtures.Float32Tolerance, "scaled latent z");
    }

    [Fact]
    public void Encode_WithoutSampling_IsTheScaledPosteriorMeanOfTheReferencesMoments()
    {
        // The reference's encode with DiagonalGaussian(sample=False): scale·(mean − shift), mean = the first z channels.
        using FluxAutoEncoder vae = ReferenceFixtures.LoadTinyVae();
        using Tensor images = ReferenceFixtures.Read(ReferenceFixtures.TinyIo, "padded_images");
        using Tensor moments = ReferenceFixtures.Read(ReferenceFixtures.TinyIo, "moments");
        int z = vae.Config.ZChannels;
        using Tensor expected = moments.narrow(1, 0, z).sub(vae.Config.ShiftFactor).mul(vae.Config.ScaleFactor);

        using Tensor mean = vae.Encode(images, sample: false);
        using Tensor again = vae.Encode(images, sample: false, new ReplayRandomSource([])); // draws nothing

        Assert.Equal(ScalarType.Float32, mean.dtype);
        Assert.Equal(new long[] { images.shape[0], z, images.shape[2] / vae.Config.DownsampleFactor, images.shape[3] / vae.Config.DownsampleFactor }, mean.shape);
        ReferenceFixtures.AssertClose(expected, mean, ReferenceFixtures.Float32Tolerance, "posterior mean latent");
        Assert.True(mean.allclose(again, rtol: 0, atol: 0));
        Assert.Throws<ArgumentNullException>(() => vae.Encode(images, sample: true));
    }

    [Fact]
    public void Decode_MatchesReference()
    {
        using FluxAutoEncoder vae = ReferenceFixtures.LoadTinyVae();
        using Tensor z = ReferenceFixtures.Read(ReferenceFixtures.TinyIo, "z");
        using Tensor expected = ReferenceFixtures.Read(ReferenceFixtures.TinyIo, "decoded");
        using Tensor decoded = vae.Decode(z);
        ReferenceFixtures.AssertClose(expected, decoded, ReferenceFixtures.Float32Tolerance, "decoded images");
    }

    [Fact]
    public void EncodePacked_EncodesThePaddedBatch_AndCropsEachLatentTopLeft()
    {
        using FluxAutoEncoder vae = ReferenceFixtures.LoadTinyVae();
        using Tensor noise = ReferenceFixtures.Read(ReferenceFixtures.TinyIo, "posterior_noise");
        using Tensor expected = ReferenceFixtures.Read(ReferenceFixtures.TinyIo, "z");
        // Image 0 is 16×16 and image 1 is 16×32 (padded to 16×32); with the tiny VAE's ×2 downsampling and 2×2 latent
        // patches their token grids are 4×4 and 4×8.
        LatentGrid[] grids = [new(4, 4), new(4, 8)];
        using var fields = new VaeImageFields(ReferenceFixtures.Read(ReferenceFixtures.TinyIo, "padded_images"), grids,
            zeros(48, dtype: ScalarType.Int64), arange(48L), full(48, float.NegativeInfinity), zeros(0, dtype: ScalarType.Int64));
        var random = new ReplayRandomSource([RecordedDraw.FromTensor(noise)]);
        IReadOnlyList<Tensor> latents = vae.EncodePacked(fields, random);
        try
        {
            Assert.Equal(2, latents.Count);
            using Tensor first = expected[0, .., ..8, ..8];
            using Tensor second = expected[1];
            ReferenceFixtures.AssertClose(first, latents[0], ReferenceFixtures.Float32Tolerance, "image 0 latent crop");
            ReferenceFixtures.AssertClose(second, latents[1], ReferenceFixtures.Float32Tolerance, "image 1 latent");
        }
        finally
        {
            foreach (Tensor latent in latents) latent.Dispose();
        }
    }

    [Fact]
    public void EncodeMoments_PackPaddingChangesTheSmallerImagesLatent()
    {
        // model.md 4.1: GroupNorm statistics, the global mid attention and the receptive fields see the padding, so an
        // image encoded inside the padded pack differs from the same image encoded alone. This is why EncodePacked
        // encodes the padded batch, as the reference does.
        using FluxAutoEncoder vae = ReferenceFixtures.LoadTinyVae();
        using Tensor images = ReferenceFixtures.Read(ReferenceFixtures.TinyIo, "padded_images");
        using Tensor packed = ReferenceFixtures.Read(ReferenceFixtures.TinyIo, "moments");
        using Tensor alone = images[..1, .., .., ..16];
        using Tensor aloneMoments = vae.EncodeMoments(alone);
        using Tensor packedCrop = packed[..1, .., .., ..8];
        using Tensor difference = (aloneMoments - packedCrop).abs().max();
        Assert.True(difference.item<float>() > 1e-3f, $"padding should change the latent; max difference {difference.item<float>()}");
    }

    [Fact]
    public void Encode_RejectsImagesNotDivisibleByTheDownsampleFactor()
    {
        using var vae = new FluxAutoEncoder(ReferenceFixtures.TinyConfig());
        using Tensor images = zeros(1, 3, 15, 16);
        var error = Assert.Throws<FluxVaeException>(() => vae.Encode(images, new SeededRandomSource(1)));
        Assert.Contains("multiples of 2", error.Message);
    }

    [Fact]
    public void FluxLayout_HasTheCheckpointNamesAndWidths()
    {
        // The released layout (ch_mult [1,2,4,4], 2 res blocks) at a quarter of the width, to stay fast.
        var config = FluxVaeConfig.Flux with { Ch = 32 };
        using var vae = new FluxAutoEncoder(config);
        Dictionary<string, Tensor> state = vae.state_dict();
        Assert.Equal([64L, 32, 1, 1], state["encoder.down.1.block.0.nin_shortcut.weight"].shape);
        Assert.Equal([128L, 128, 3, 3], state["encoder.down.2.downsample.conv.weight"].shape);
        Assert.False(state.ContainsKey("encoder.down.3.downsample.conv.weight"));
        Assert.Equal([32L, 128, 3, 3], state["encoder.conv_out.weight"].shape);
        Assert.Equal([128L, 16, 3, 3], state["decoder.conv_in.weight"].shape);
        Assert.Equal([128L, 128, 1, 1], state["decoder.mid.attn_1.q.weight"].shape);
        Assert.Equal([32L, 64, 3, 3], state["decoder.up.0.block.0.conv1.weight"].shape);
        Assert.True(state.ContainsKey("decoder.up.3.block.2.conv2.bias"));
        Assert.False(state.ContainsKey("decoder.up.0.upsample.conv.weight"));
        Assert.Equal([3L, 32, 3, 3], state["decoder.conv_out.weight"].shape);
        Assert.Equal(8, FluxVaeConfig.Flux.DownsampleFactor);
        Assert.Equal(512, FluxVaeConfig.Flux.BottleneckChannels);
    }

    [Fact]
    public void Load_WrongConfiguration_FailsNamingTheTensors()
    {
        var wrong = ReferenceFixtures.TinyConfig() with { ZChannels = 8 };
        var error = Assert.Throws<StateDictMismatchException>(() => FluxAutoEncoder.Load(ReferenceFixtures.TinyWeights, wrong,
            cancellationToken: TestContext.Current.CancellationToken));
        Assert.Contains("conv_out", error.Message);
    }

    [Fact]
    public void Validate_ReportsWidthsThatGroupNormCannotSplit()
    {
        var bad = FluxVaeConfig.Flux with { Ch = 48, ZChannels = 0 };
        var error = Assert.Throws<FluxVaeException>(bad.Validate);
        Assert.Contains("multiple of 32", error.Message);
        Assert.Contains("ZChannels", error.Message);
    }
}
