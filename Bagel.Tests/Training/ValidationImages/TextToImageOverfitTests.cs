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
/// known latent per image instead: 4 fixed, well-separated latents, and its decoder trained (briefly, here, with a
/// little noise on the latents, since the sampler lands near them, not on them) to turn latent i into image i. The
/// BAGEL is trained through the real Trainer on packs of the 4 pairs, with those latents as the images' encodings
/// (<see cref="TableLatentModel"/>), then generates from each caption with the real sampler and decoder; PSNR is
/// measured against the training image itself. An untrained BAGEL of the same seed must fail the same threshold.
/// </summary>
/// <remarks>
/// Sized for the suite: 16×16 images (one 2×2-latent token each), 120 decoder steps, 400 training steps at lr 3e-3
/// (1e-2 left the flow loss at 1.0 and the worst image at 18 dB), 10 sampler timesteps without guidance, all on one
/// torch thread (on a loaded 2-core machine the two OpenMP threads of these small ops mostly wait for each other: the
/// decoder took 68 CPU-s on two threads, 7 on one, with the same figures). Measured: trained 25.1-29.4 dB, untrained
/// 3.0-9.7 dB, the decoder's own 30.8-35.9 dB.
/// </remarks>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))]
public sealed class TextToImageOverfitTests
{
    /// <summary>The PSNR (dB) every regenerated image must reach, and no image of the untrained model may: about 8 dB
    /// under the worst trained image and 7 dB over the best untrained one, as measured.</summary>
    public const double Threshold = 17;

    /// <summary>16 px: one 2×2-latent token per image (×8 VAE, latent patch 2).</summary>
    private const int Side = 16;

    private const int Steps = 400, Hidden = 64, DecoderSteps = 120, Timesteps = 10;
    private const double Lr = 3e-3, DecoderLr = 5e-3, DecoderNoise = 0.15;

    private static BagelConfig Config() => TinyTextToImage.Config(hidden: Hidden, intermediate: 2 * Hidden);

    [Fact]
    public async Task FourTrainedPairsAreRegeneratedFromTheirCaptionsAndAnUntrainedModelFailsTheSameThreshold()
    {
        await RunAsync(); // one torch thread throughout (see the remarks), set around each synchronous stretch only
    }

    private static async Task RunAsync()
    {
        using var dir = new TempDirectory("bagel-t2i-overfit-");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        torch.manual_seed(31);
        using var vae = new FluxAutoEncoder(BagelTestModels.Vae);
        using var generator = new Generator(33);
        Tensor[] latents = [.. Enumerable.Range(0, 4).Select(_ => torch.randn([16, Side / 8, Side / 8], generator: generator))];
        Tensor[] images = [.. Enumerable.Range(0, 4).Select(i => TinyTextToImage.Image(i, Side))];
        double[] decoded;
        using (TorchThreads.Use(1))
            decoded = TrainDecoder(vae, latents, images);
        double decoderSeconds = clock.Elapsed.TotalSeconds;

        torch.manual_seed(32);
        using var model = new BagelModel(Config());
        torch.manual_seed(32);
        using var untrained = new BagelModel(Config());
        TrainingConfiguration config = ShortRuns.Configuration(dir.Path, totalSteps: Steps, lr: Lr);
        var steps = new List<TrainingStepReport>();
        using (Trainer trainer = new TrainerBuilder().OnStep(steps.Add)
            .UseModel(new TableLatentModel(model, latents, () => new BagelModel(Config())))
            .UseData((_, ct) => TinyTextToImage.Endless(ct, Side), () => new RankDataStatus { Rank = 0 })
            .UseOptions(config)
            .UseCpuThreads(1) // held by the trainer on every step, whatever pool thread runs it
            .UseLogger(Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance)
            .Build())
            await trainer.RunAsync(TestContext.Current.CancellationToken);
        double trainSeconds = clock.Elapsed.TotalSeconds - decoderSeconds;

        double[] trained, random;
        using (TorchThreads.Use(1))
            (trained, random) = (Psnrs(model, vae, images), Psnrs(untrained, vae, images));
        string figures = $"PSNR after {Steps} steps: trained [{F(trained)}] dB, untrained [{F(random)}] dB, threshold {Threshold} dB " +
            $"(the decoder's own: [{F(decoded)}] dB); flow mse {steps.Take(5).Average(s => s.Mse):F3} -> {steps.TakeLast(10).Average(s => s.Mse):F3}; " +
            $"{decoderSeconds:F0} s decoder, {trainSeconds:F0} s training, {clock.Elapsed.TotalSeconds - decoderSeconds - trainSeconds:F0} s generating";
        TestContext.Current.SendDiagnosticMessage(figures);
        Assert.All(trained, p => Assert.True(p >= Threshold, $"a regenerated image reached only {p:F1} dB; {figures}"));
        Assert.All(random, p => Assert.True(p < Threshold, $"the untrained model reached {p:F1} dB; the threshold does not separate; {figures}"));
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
        using var optimizer = torch.optim.Adam(vae.Decoder.parameters(), lr: DecoderLr);
        vae.train();
        using var augmentation = new Generator(34);
        for (int i = 0; i < DecoderSteps; i++)
        {
            using var step = torch.NewDisposeScope();
            optimizer.zero_grad();
            // A little noise on the latents: the sampler lands near, not exactly on, them.
            Tensor noisy = z.add(torch.randn(z.shape, generator: augmentation).mul(DecoderNoise / vae.Config.ScaleFactor));
            Tensor loss = torch.nn.functional.mse_loss(vae.Decoder.forward(noisy), target);
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
        var options = new ImageGenerationOptions { Height = Side, Width = Side, NumTimesteps = Timesteps, CfgTextScale = 1, TimestepShift = 1 };
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
