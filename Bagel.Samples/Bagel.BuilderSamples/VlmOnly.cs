using Bagel.Data.Tokenization;
using Bagel.Models.Bagel;
using Bagel.Training.Loop;
using Bagel.Training.Models;

namespace Bagel.BuilderSamples;

/// <summary>Vision-language only: the understanding branch alone (the reference's <c>visual_gen=False</c>; no VAE), VLM data only.</summary>
internal static class VlmOnly
{
    public static async Task RunAsync(BagelTokenizerSetup tokenizer, CancellationToken ct)
    {
        BagelConfig config = SampleSetup.Model(tokenizer.Tokenizer.Count, visualGen: false, visualUnd: true);
        using var model = new BagelModel(config);

        using Trainer trainer = new TrainerBuilder()
            .UseModel(new BagelTrainingModel(model, vae: null, () => new BagelModel(config)))
            .UseData(await SampleSetup.PipelineAsync("vlm-only", "vlm_sft", tokenizer, ct))
            .UseOptions(SampleSetup.Options("vlm-only", steps: 20))
            .UseLogger(SampleSetup.Loggers)
            .Build();
        await trainer.RunAsync(ct);
    }
}
