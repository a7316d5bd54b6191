namespace Bagel.Training.Validation;

/// <summary>The validation losses of one dataset group, reduced as training reduces them (<c>TrainingLoss.Combine</c>).</summary>
/// <param name="Group">The dataset group name.</param>
/// <param name="Mse">Flow-matching MSE over the group's batches: each batch's MSE (channel mean, then mean over its noisy
/// latent tokens) weighted by its MSE tokens, i.e. the mean over all the group's noisy latent tokens. 0 when it has none.</param>
/// <param name="Ce">Cross-entropy over the group's batches: each batch's CE weighted by its CE tokens (without
/// <c>ce_loss_reweighting</c> this is the mean over all the group's labelled tokens). 0 when it has none.</param>
/// <param name="MseTokens">Noisy latent tokens with MSE loss in the group's batches.</param>
/// <param name="CeTokens">Labelled tokens with CE loss in the group's batches.</param>
/// <param name="Batches">Batches evaluated.</param>
public sealed record GroupValidationLoss(string Group, double Mse, double Ce, long MseTokens, long CeTokens, int Batches)
{
    /// <summary>True when the group had noisy latent tokens, so <see cref="Mse"/> was measured.</summary>
    public bool HasMse => MseTokens > 0;

    /// <summary>True when the group had labelled tokens, so <see cref="Ce"/> was measured.</summary>
    public bool HasCe => CeTokens > 0;
}

/// <summary>One evaluation of the validation set, as the on-eval callbacks receive it.</summary>
/// <param name="Step">Completed optimizer steps when it ran (the weights of checkpoint <c>Step</c>; the next step to
/// train is <c>Step</c>, 0-based). It is the step of the log line and of the metric record.</param>
/// <param name="Groups">One entry per validation group, in the set's order.</param>
/// <param name="Elapsed">Wall time the evaluation took.</param>
public sealed record ValidationReport(long Step, IReadOnlyList<GroupValidationLoss> Groups, TimeSpan Elapsed)
{
    /// <summary>The losses of <paramref name="group"/>, or null when the set has no such group.</summary>
    /// <param name="group">The dataset group name.</param>
    /// <returns>The losses or null.</returns>
    public GroupValidationLoss? Get(string group) => Groups.FirstOrDefault(g => g.Group == group);
}
