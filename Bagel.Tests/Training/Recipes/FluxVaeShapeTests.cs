using Bagel.Core.StateDicts;
using Bagel.Models.FluxVae;
using Bagel.Tests.Infrastructure;
using Bagel.Training.Recipes;

namespace Bagel.Tests.Training.Recipes;

public sealed class FluxVaeShapeTests
{
    [Theory]
    [InlineData(32, new[] { 1, 1, 1, 1 }, 1, 16)]
    [InlineData(32, new[] { 1, 2 }, 2, 4)]
    public void TheShapeIsReadBackFromTheFile(int ch, int[] chMult, int blocks, int z)
    {
        using var dir = new TempDirectory("bagel-vae-");
        var config = new FluxVaeConfig(3, ch, 3, chMult, blocks, z, FluxVaeConfig.Flux.ScaleFactor, FluxVaeConfig.Flux.ShiftFactor);
        string path = Path.Combine(dir.Path, "ae.safetensors");
        using (var vae = new FluxAutoEncoder(config)) StateDictSaver.SaveFile(vae, path, cancellationToken: TestContext.Current.CancellationToken);

        FluxVaeConfig inferred = FluxVaeShape.Infer(path);

        Assert.Equal((config.InChannels, config.Ch, config.OutChannels, config.NumResBlocks, config.ZChannels), (inferred.InChannels, inferred.Ch, inferred.OutChannels, inferred.NumResBlocks, inferred.ZChannels));
        Assert.Equal(chMult, inferred.ChMult);
        using FluxAutoEncoder loaded = FluxAutoEncoder.Load(path, inferred, cancellationToken: TestContext.Current.CancellationToken); // strict: every tensor fits
    }

    [Fact]
    public void AFileThatIsNotAnAutoencoderIsNamed()
    {
        using var dir = new TempDirectory("bagel-vae-");
        string path = Path.Combine(dir.Path, "not-ae.safetensors");
        using (var linear = TorchSharp.torch.nn.Linear(2, 2)) StateDictSaver.SaveFile(linear, path, cancellationToken: TestContext.Current.CancellationToken);

        var error = Assert.Throws<FluxVaeException>(() => FluxVaeShape.Infer(path));

        Assert.Contains("encoder.conv_in.weight", error.Message, StringComparison.Ordinal);
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
    }
}
