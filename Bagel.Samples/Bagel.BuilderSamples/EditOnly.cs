using Bagel.Data.Tokenization;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Training.Loop;
using Bagel.Training.Models;

namespace Bagel.BuilderSamples;

/// <summary>Image editing only: both branches (edits condition on ViT and VAE copies of the source image), edit data only.</summary>
internal static class EditOnly
{
    public static async Task RunAsync(BagelTokenizerSetup tokenizer, CancellationToken ct)
    {
        BagelConfig config = SampleSetup.Model(tokenizer.Tokenizer.Count, visualGen: true, visualUnd: true);
        using var model = new BagelModel(config);
        using var vae = new FluxAutoEncoder(config.VaeConfig!);
        model.FreezeVit(); // the reference's freeze_vit: train the language model and the generation path only

        using Trainer trainer = new TrainerBuilder()
            .UseModel(new BagelTrainingModel(model, vae, () => new BagelModel(config)))
            .UseData(await SampleSetup.PipelineAsync("edit-only", "unified_edit", tokenizer, ct))
            .UseOptions(SampleSetup.Options("edit-only", steps: 20))
            .UseLogger(SampleSetup.Loggers)
            .OnStep(step => { if (step.Skipped) Console.Error.WriteLine($"step {step.Step} skipped (non-finite loss)"); })
            .Build();
        await trainer.RunAsync(ct);
    }
}
