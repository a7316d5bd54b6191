using Bagel.Core.Randomness;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Models.Generation;
using Bagel.Tests.Models.Bagel;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Tests.Models.Generation;

/// <summary><see cref="ImageGenerationOptions.UsePrefixCache"/> false recomputes the prefix at every step and in every
/// branch, and gives the image of the cached path.</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // builds models under torch.manual_seed
public sealed class PrefixCacheOptionTests
{
    [Fact]
    public void WithoutThePrefixCacheEveryStepGivesTheCachedPathsVelocitiesAndImage()
    {
        using BagelModel model = BagelTestModels.Model(seed: 21);
        torch.manual_seed(22);
        using var vae = new FluxAutoEncoder(BagelTestModels.Vae);
        model.eval();
        var t = BagelTestModels.Tokens;
        var generator = new BagelGenerator(model, vae, null, new GenerationTokenIds(t.BosTokenId, t.EosTokenId, t.StartOfImage, t.EndOfImage));
        // Text and image guidance both on (three branches; the text-unconditional context is empty), some steps outside the interval.
        var options = new ImageGenerationOptions { Height = 48, Width = 64, NumTimesteps = 6, CfgTextScale = 3, CfgImgScale = 1.5, CfgInterval = (0.3, 0.9) };
        int[] prompt = [3, 14, 15, 9, 26, 5];

        (List<Tensor> cachedV, Tensor cachedImage) = Run(options);
        (List<Tensor> freshV, Tensor freshImage) = Run(options with { UsePrefixCache = false });

        Assert.Equal(5, cachedV.Count);
        for (int i = 0; i < cachedV.Count; i++)
        {
            double scale = cachedV[i].abs().max().item<float>(), error = (cachedV[i] - freshV[i]).abs().max().item<float>();
            Assert.True(error <= 1e-5 * scale, $"step {i}: guided velocity differs by {error:E2} (scale {scale:E2})");
        }
        Assert.Equal(new long[] { 48, 64, 3 }, freshImage.shape);
        Assert.True((cachedImage.to(int32) - freshImage.to(int32)).abs().max().item<int>() <= 1, "the images differ by more than 1");
        foreach (Tensor v in cachedV.Concat(freshV)) v.Dispose();
        cachedImage.Dispose();
        freshImage.Dispose();

        (List<Tensor>, Tensor) Run(ImageGenerationOptions o)
        {
            var velocities = new List<Tensor>();
            using var noise = new SeededRandomSource(5);
            Tensor image = generator.TextToImage(prompt, o, noise, s => velocities.Add(s.Velocity.clone().DetachFromDisposeScope()), TestContext.Current.CancellationToken);
            return (velocities, image);
        }
    }
}
