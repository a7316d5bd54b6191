using Bagel.Core.Batching;
using Bagel.Models.Generation;
using Bagel.Models.Qwen2;
using Bagel.Tests.Models.Qwen2;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Bagel.Tests.Models.Generation;

/// <summary>The cached inference forward against the packed training forward of the same tokens (same weights): a
/// prefix prefilled into the cache and a segment attending to it must see exactly what one packed sample sees.</summary>
public sealed class KvCacheInferenceTests
{
    private const double Tolerance = 1e-5;

    private static Qwen2Model Backbone(Qwen2LayerModule layerModule = Qwen2LayerModule.Qwen2MoTDecoderLayer)
    {
        torch.manual_seed(11);
        var model = new Qwen2Model(Qwen2Fixtures.Tiny(layerModule));
        model.eval();
        return model;
    }

    private static void AssertClose(Tensor expected, Tensor actual, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        double scale = expected.abs().max().item<float>();
        double error = (expected - actual).abs().max().item<float>();
        Assert.True(error <= Tolerance * scale, $"{what}: max |diff| {error:E3} exceeds {Tolerance:E0} × {scale:E3}");
    }

    [Theory]
    [InlineData(Qwen2LayerModule.Qwen2MoTDecoderLayer)]
    [InlineData(Qwen2LayerModule.Qwen2MoEDecoderLayer)]
    [InlineData(Qwen2LayerModule.Qwen2DecoderLayer)]
    public void Prefill_InOneOrTwoChunks_MatchesACausalTrainingSample(Qwen2LayerModule layerModule)
    {
        using var noGrad = no_grad();
        using Qwen2Model model = Backbone(layerModule);
        using Tensor x = randn(7, 16);
        using Tensor positions = arange(7, dtype: int64);
        using Tensor training = model.forward(new Qwen2PackedInput(x, [SampleLayout.FromSplits(new AttentionSplit(7, AttentionMode.Causal))],
            positions, arange(7, dtype: int64)));

        using var whole = new KvCache(2);
        using Tensor once = model.ForwardInference(x, positions, whole, causal: true, updateCache: true);
        AssertClose(training, once, "one chunk");
        Assert.Equal(7, whole.Length);

        using var chunked = new KvCache(2);
        using Tensor first = model.ForwardInference(x.narrow(0, 0, 3), positions.narrow(0, 0, 3), chunked, causal: true, updateCache: true);
        using Tensor second = model.ForwardInference(x.narrow(0, 3, 4), positions.narrow(0, 3, 4), chunked, causal: true, updateCache: true);
        AssertClose(training.narrow(0, 3, 4), second, "second chunk over the cached first");
        Assert.Equal(7, chunked.Length);
        AssertClose(whole.KeysOf(1)!, chunked.KeysOf(1)!, "cached keys");
    }

    [Fact]
    public void ImageSegment_OverCachedText_MatchesAFullSplitAfterACausalSplit()
    {
        using var noGrad = no_grad();
        using Qwen2Model model = Backbone();
        const int text = 5, image = 6; // image = [SOI, 4 latent tokens, EOI]
        using Tensor x = randn(text + image, 16);
        long[] pos = [.. Enumerable.Range(0, text).Select(i => (long)i), .. Enumerable.Repeat((long)text, image)];
        using Tensor positions = tensor(pos);
        using Tensor gen = arange(text + 1, text + image - 1, dtype: int64);
        using Tensor und = tensor([.. Enumerable.Range(0, text + 1).Select(i => (long)i), text + image - 1]);
        var sample = SampleLayout.FromSplits(new AttentionSplit(text, AttentionMode.Causal), new AttentionSplit(image, AttentionMode.Full));
        using Tensor training = model.forward(new Qwen2PackedInput(x, [sample], positions, und, gen));

        using var cache = new KvCache(2);
        using Tensor prefill = model.ForwardInference(x.narrow(0, 0, text), positions.narrow(0, 0, text), cache, causal: true, updateCache: true);
        using Tensor localGen = arange(1, image - 1, dtype: int64);
        using Tensor query = model.ForwardInference(x.narrow(0, text, image), positions.narrow(0, text, image), cache, causal: false,
            updateCache: false, genTokenIndexes: localGen);
        AssertClose(training.narrow(0, text, image), query, "image segment");
        Assert.Equal(text, cache.Length); // a sampler step leaves the cache as it was
    }
}
