using Bagel.Data.Tokenization;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Training.Loop;
using Bagel.Training.Models;

namespace Bagel.BuilderSamples;

/// <summary>Text-to-image only: the generation branch alone (the reference's <c>visual_und=False</c>), T2I data only.</summary>
internal static class T2IOnly
{
    public static async Task RunAsync(BagelTokenizerSetup tokenizer, CancellationToken ct)
    {
        BagelConfig config = SampleSetup.Model(tokenizer.Tokenizer.Count, visualGen: true, visualUnd: false);
        using var model = new BagelModel(config);
        using var vae = new FluxAutoEncoder(config.VaeConfig!); // in a real run: FluxAutoEncoder.Load("ae.safetensors")

        using Trainer trainer = new TrainerBuilder()
            .UseModel(new BagelTrainingModel(model, vae, () => new BagelModel(config)))
            .UseData(await SampleSetup.PipelineAsync("t2i-only", "t2i_pretrain", tokenizer, ct))
            .UseOptions(SampleSetup.Options("t2i-only", steps: 20))
            .UseLogger(SampleSetup.Loggers)
            .Build();
        await trainer.RunAsync(ct);
    }
}
