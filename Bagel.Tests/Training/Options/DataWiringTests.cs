using Bagel.Data.Config;
using Bagel.Data.Packing;
using Bagel.Data.Pipeline;
using Bagel.Training.Options;

namespace Bagel.Tests.Training.Options;

public sealed class DataWiringTests
{
    private static TrainingConfiguration Configuration(bool visualGen, bool visualUnd) => new(
        new ModelOptions { MaxLatentSize = 64, VitMaxNumPatchPerSide = 40, TextCondDropoutProb = 0.2, VaeCondDropoutProb = 0.25, VitCondDropoutProb = 0.35, InterpolatePos = true },
        new DataOptions { MaxNumTokens = 11520, MaxNumTokensPerSample = 10240, PreferBufferBefore = 100, MaxBufferSize = 5 },
        new TrainingOptions { VisualGen = visualGen, VisualUnd = visualUnd, ExpectedNumTokens = 10240 });

    [Fact]
    public void BothBranchesTakeTheModelsSizesAndDropouts()
    {
        PackingOptions options = DataWiring.ToPackingOptions(Configuration(true, true));

        Assert.Equal((10240, 11520, 10240, 100, 5, true), (options.ExpectedNumTokens, options.MaxNumTokens, options.MaxNumTokensPerSample, options.PreferBufferBefore, options.MaxBufferSize, options.InterpolatePos));
        Assert.Equal((64, 40), (options.MaxLatentSize, options.MaxNumPatchPerSide));
        Assert.Equal((0.2, 0.25, 0.35), (options.TextCondDropoutProb, options.VaeCondDropoutProb, options.VitCondDropoutProb));
        options.Validate();
    }

    [Fact]
    public void WithoutVisualGenTheDataDefaultsForDropoutAndLatentSizeStay()
    {
        PackingOptions options = DataWiring.ToPackingOptions(Configuration(false, true));
        var defaults = new PackingOptions();

        Assert.Equal((defaults.TextCondDropoutProb, defaults.VitCondDropoutProb, defaults.VaeCondDropoutProb), (options.TextCondDropoutProb, options.VitCondDropoutProb, options.VaeCondDropoutProb));
        Assert.Equal((0.1, 0.4, 0.1), (options.TextCondDropoutProb, options.VitCondDropoutProb, options.VaeCondDropoutProb));
        Assert.Equal(defaults.MaxLatentSize, options.MaxLatentSize);
        Assert.Equal(40, options.MaxNumPatchPerSide);
    }

    [Fact]
    public void WithoutVisualUndThePatchLimitStaysAndTheVaeDownsampleIsLatentPatchTimesEight()
    {
        PackingOptions options = DataWiring.ToPackingOptions(Configuration(true, false));

        Assert.Equal(new PackingOptions().MaxNumPatchPerSide, options.MaxNumPatchPerSide);
        Assert.Equal(16, DataWiring.VaeImageDownsample(new ModelOptions()));
    }

    [Fact]
    public void PipelineOptionsTakeWorkersPrefetchAndSeedFromTheDataFlagsAndThePackingFromToPackingOptions()
    {
        TrainingConfiguration configuration = Configuration(true, true);
        (configuration.Data.NumWorkers, configuration.Data.PrefetchFactor, configuration.Data.DataSeed) = (3, 5, 77);

        DataPipelineOptions options = DataWiring.ToPipelineOptions(configuration);

        Assert.Equal((3, 5, 77L, 0, 1), (options.NumWorkers, options.PrefetchFactor, options.DataSeed, options.Rank, options.WorldSize));
        Assert.Equal(DataWiring.ToPackingOptions(configuration), options.Packing);
        options.Validate();
    }

    [Fact]
    public void ModelImageLimitsTakeTheGridsTheStridesAndInterpolatePosFromTheModelFlags()
    {
        ModelImageLimits limits = DataWiring.ToModelImageLimits(Configuration(true, true));

        Assert.Equal(new ModelImageLimits(MaxLatentSize: 64, VitMaxNumPatchPerSide: 40, VaeImageDownsample: 16, VitPatchSize: 14, InterpolatePos: true), limits);
    }
}
