using TorchSharp;

namespace Bagel.Training.Loss;

/// <summary>
/// The losses of one micro-batch: <see cref="Total"/> for backward, and detached <see cref="Ce"/> / <see cref="Mse"/>
/// scalars for the log (0 for a branch that is off, as the reference logs).
/// </summary>
/// <param name="Total">(ce_weight·CE + mse_weight·MSE) / grad_accum, with autograd history.</param>
/// <param name="Ce">CE as logged (detached scalar).</param>
/// <param name="Mse">MSE as logged (detached scalar).</param>
/// <param name="CeTokens">Tokens with CE loss (<c>total_ce_tokens</c>).</param>
/// <param name="MseTokens">Latent tokens with MSE loss (<c>total_mse_tokens</c>).</param>
public sealed record StepLoss(torch.Tensor Total, torch.Tensor Ce, torch.Tensor Mse, long CeTokens, long MseTokens);
