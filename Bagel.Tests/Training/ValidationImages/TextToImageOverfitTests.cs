using Bagel.Core.Batching;
using Bagel.Core.DataStatus;
using Bagel.Core.Randomness;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Models.Generation;
using Bagel.Tests.Infrastructure;
using Bagel.Tests.Models.Bagel;
using Bagel.Tests.Training.Models;
using Bagel.Training.Loop;
using Bagel.Training.Options;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Tests.Training.ValidationImages;

/// <summary>
/// Issue 10's overfit check: a tiny text-to-image BAGEL trained on 4 caption/image pairs regenerates each training
/// image from its caption. A random VAE decodes every latent to nearly the same grey, so the test gives the tiny VAE a
/// known latent per image instead: 4 fixed, well-separated latents, and its decoder trained (briefly, here) to turn
/// latent i into image i. The BAGEL is trained through the real Trainer on packs of the 4 pairs, with those latents
/// as the images' encodings (<see cref="TableLatentModel"/>), then generates from each caption with the real sampler
/// and decoder; PSNR is measured against the training image itself. An untrained BAGEL of the same seed must fail the
/// same threshold.
/// </summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))]
public sealed class TextToImageOverfitTests
{
    /// <summary>The PSNR (dB) every regenerated image must reach.</summary>
    public const double Threshold = 20;

    private const int Steps = 200, Hidden = 64, DecoderSteps = 100;
    private const double Lr = 3e-3;

    /// <summary>
    /// Unfinished: measured once (200 steps, hidden 64, decoder 100 steps): the decoder reproduces the images at
    /// 25.8–29.6 dB, the trained BAGEL regenerates them at 5.7–10.9 dB, the untrained one at 4.4–5.8 dB; the flow MSE
    /// was still falling (1.89 → 0.83), and the decoder's training alone is far too slow for the suite. Until the run
    /// is made cheaper and longer (e.g. no decoder training, more steps) no threshold separates the two per image.
    /// </summary>
    private const string Unfinished = "Unfinished: 200 steps do not yet separate trained (5.7-10.9 dB) from untrained (4.4-5.8 dB) per image, and the decoder pre-training is too slow for the suite; see the remarks.";

    private static BagelConfig Config() => TinyTextToImage.Config(hidden: Hidden, intermediate: 2 * Hidden);

    [Fact(Skip = Unfinished)]
    public async Task FourTrainedPairsAreRegeneratedFromTheirCaptionsAndAnUntrainedModelFailsTheSameThreshold()
    {
        using var dir = new TempDirectory("bagel-t2i-overfit-");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        torch.manual_seed(31);
        using var vae = new FluxAutoEncoder(BagelTestModels.Vae);
        var generator = new Generator(33);
        Tensor[] latents = [.. Enumerable.Range(0, 4).Select(_ => torch.randn([16, TinyTextToImage.Side / 8, TinyTextToImage.Side / 8], generator: generator))];
        Tensor[] images = [.. Enumerable.Range(0, 4).Select(TinyTextToImage.Image)];
        double[] decoded = TrainDecoder(vae, latents, images);
        double decoderSeconds = clock.Elapsed.TotalSeconds;

        torch.manual_seed(32);
        using var model = new BagelModel(Config());
        torch.manual_seed(32);
        using var untrained = new BagelModel(Config());
        TrainingConfiguration config = ShortRuns.Configuration(dir.Path, totalSteps: Steps, lr: Lr);
        var steps = new List<TrainingStepReport>();
        using (Trainer trainer = new TrainerBuilder().OnStep(steps.Add)
            .UseModel(new TableLatentModel(model, latents, () => new BagelModel(Config())))
            .UseData((_, ct) => TinyTextToImage.Endless(ct), () => new RankDataStatus { Rank = 0 })
            .UseOptions(config)
            .UseLogger(Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance)
            .Build())
            await trainer.RunAsync(TestContext.Current.CancellationToken);
        double trainSeconds = clock.Elapsed.TotalSeconds;

        double[] trained = Psnrs(model, vae, images), random = Psnrs(untrained, vae, images);
        TestContext.Current.SendDiagnosticMessage($"PSNR after {Steps} steps ({decoderSeconds:F0} s decoder, {trainSeconds - decoderSeconds:F0} s training): trained [{F(trained)}] dB, " +
            $"untrained [{F(random)}] dB (the decoder's own: [{F(decoded)}] dB); mse {steps.Take(5).Average(s => s.Mse):F3} -> {steps.TakeLast(10).Average(s => s.Mse):F3}");
        Assert.All(trained, p => Assert.True(p >= Threshold, $"a regenerated image reached only {p:F1} dB (all: {F(trained)}; untrained {F(random)})"));
        Assert.All(random, p => Assert.True(p < Threshold, $"the untrained model reached {p:F1} dB; the threshold does not separate (trained {F(trained)})"));
        foreach (Tensor t in latents.Concat(images)) t.Dispose();
    }

    private static string F(double[] values) => string.Join(", ", values.Select(p => p.ToString("F1", System.Globalization.CultureInfo.InvariantCulture)));

    /// <summary>Trains the VAE's decoder to map latent i to image i (Adam, full batch); returns each image's PSNR through it.</summary>
    private static double[] TrainDecoder(FluxAutoEncoder vae, Tensor[] latents, Tensor[] images)
    {
        using var scope = torch.NewDisposeScope();
        Tensor z = torch.stack(latents).div(vae.Config.ScaleFactor).add(vae.Config.ShiftFactor); // as FluxAutoEncoder.Decode unscales
        Tensor target = torch.stack(images);
        foreach (var p in vae.Decoder.parameters()) p.requires_grad = true; // the VAE is built frozen
        using var optimizer = torch.optim.Adam(vae.Decoder.parameters(), lr: 5e-3);
        vae.train();
        for (int i = 0; i < DecoderSteps; i++)
        {
            using var step = torch.NewDisposeScope();
            optimizer.zero_grad();
            Tensor loss = torch.nn.functional.mse_loss(vae.Decoder.forward(z), target);
            loss.backward();
            optimizer.step();
        }
        vae.eval();
        foreach (var p in vae.Decoder.parameters())
        {
            p.grad = null;
            p.requires_grad = false;
        }
        using var noGrad = torch.no_grad();
        Tensor out_ = vae.Decode(torch.stack(latents));
        return [.. Enumerable.Range(0, 4).Select(i => TinyTextToImage.Psnr(ToPixels(out_[i]), ToPixels(images[i])))];
    }

    /// <summary>[3, H, W] in [−1, 1] → [H, W, 3] uint8, as the generator's decode rounds.</summary>
    private static Tensor ToPixels(Tensor image) => image.mul(0.5).add(0.5).clamp(0, 1).permute(1, 2, 0).mul(255).to(uint8);

    /// <summary>PSNR of each caption's regenerated image against its training image.</summary>
    private static double[] Psnrs(BagelModel model, FluxAutoEncoder vae, Tensor[] images)
    {
        model.eval();
        var ids = TinyTextToImage.Tokenizer.SpecialTokenIds;
        var generator = new BagelGenerator(model, vae, text => TinyTextToImage.Tokenizer.Tokenizer.Encode(text),
            new GenerationTokenIds(ids.BosTokenId, ids.EosTokenId, ids.StartOfImage, ids.EndOfImage));
        // No guidance: the model never saw a caption dropped (text_cond_dropout 0), so it has no unconditional branch to guide with.
        var options = new ImageGenerationOptions { Height = TinyTextToImage.Side, Width = TinyTextToImage.Side, NumTimesteps = 10, CfgTextScale = 1, TimestepShift = 1 };
        var psnrs = new double[4];
        for (int i = 0; i < 4; i++)
        {
            using var scope = torch.NewDisposeScope();
            using var noise = new SeededRandomSource((ulong)(50 + i));
            Tensor image = generator.TextToImage(TinyTextToImage.Captions[i], options, noise, TestContext.Current.CancellationToken);
            psnrs[i] = TinyTextToImage.Psnr(image, ToPixels(images[i]));
        }
        return psnrs;
    }

    /// <summary>The BAGEL composite with a fixed latent per training image instead of the VAE encoder (every pack holds
    /// the 4 pairs in order): the flow-matching noise and timesteps are the composite's own.</summary>
    private sealed class TableLatentModel(BagelModel model, Tensor[] latents, Func<BagelModel> twin) : ITrainableModel
    {
        public nn.Module Module => model;

        public nn.Module CreateTwin() => twin();

        public ModelLossOutputs Forward(PackedBatch batch)
        {
            BagelForwardOutput output = model.Forward(batch, latents, TorchGlobalRandomSource.Instance);
            return new ModelLossOutputs(output.Ce, null, output.Mse);
        }
    }
}
