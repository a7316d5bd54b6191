namespace Bagel.Training.Checkpoints;

/// <summary>
/// What to load from where when a run starts (training.md 5.7). The model loads <see cref="ModelWeightsFile"/> and the
/// EMA copy <see cref="EmaWeightsFile"/>, both strictly (see <see cref="TrainingCheckpointer"/>, a deliberate fix of the reference's <c>strict=False</c>) and without <see cref="DroppedWeightKeySuffixes"/>; with
/// <see cref="ResumeKind.Full"/> the optimizer, scheduler, data status and RNG states come from <see cref="Folder"/> and
/// training continues with 0-based step <see cref="StartStep"/>.
/// </summary>
/// <param name="Kind">Scratch, model-only or full.</param>
/// <param name="Folder">The folder loaded from; null from scratch.</param>
/// <param name="ModelWeightsFile">Weights for the live model: <c>ema.safetensors</c> with finetune_from_ema + resume_model_only, else <c>model.safetensors</c>.</param>
/// <param name="EmaWeightsFile">Weights for the EMA copy: <c>ema.safetensors</c>, or the model file when there is none.</param>
/// <param name="StartStep">0-based index of the first step to train (= completed steps of the checkpoint; 0 unless full).</param>
/// <param name="FromAutoResume">True when <c>auto_resume</c> found the folder in <c>checkpoint_dir</c>.</param>
/// <param name="Reason">One line saying why this plan was chosen, for the log.</param>
public sealed record ResumePlan(ResumeKind Kind, string? Folder, string? ModelWeightsFile, string? EmaWeightsFile, long StartStep,
    bool FromAutoResume, string Reason)
{
    /// <summary>
    /// Keys dropped before loading weights: fixed sin-cos tables rebuilt for the current sizes (the reference drops
    /// both <c>*_pos_embed.pos_embed</c> keys).
    /// </summary>
    public static IReadOnlyList<string> DroppedWeightKeySuffixes { get; } = ["latent_pos_embed.pos_embed", "vit_pos_embed.pos_embed"];

    /// <summary>Whether optimizer, scheduler, data status and RNG states are loaded.</summary>
    public bool LoadsTrainState => Kind == ResumeKind.Full;

    /// <summary>The file of <paramref name="fileName"/> in <see cref="Folder"/> (only for <see cref="ResumeKind.Full"/>).</summary>
    public string TrainStateFile(string fileName) =>
        Kind == ResumeKind.Full && Folder is not null ? Path.Combine(Folder, fileName)
            : throw new InvalidOperationException($"A {Kind} plan loads no train state.");
}
