using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Training.Optimization;

/// <summary>
/// The arithmetic of TorchSharp's AdamW step (no AMSGrad, not maximising) for one step count, applied to any set of
/// matching tensors (one parameter, or a chunk of flat buffers) with the same operations in the same order, so the
/// results are bit-identical to TorchSharp's.
/// </summary>
/// <param name="Decay">The decoupled weight-decay factor <c>1 − lr·weight_decay</c>.</param>
/// <param name="Beta1">β1.</param>
/// <param name="Beta2">β2.</param>
/// <param name="Eps">ε.</param>
/// <param name="DenominatorScale"><c>√(1 − β2^step)</c>.</param>
/// <param name="StepSize"><c>lr / (1 − β1^step)</c>.</param>
internal readonly record struct AdamWUpdate(double Decay, double Beta1, double Beta2, double Eps, double DenominatorScale, double StepSize)
{
    /// <summary>The coefficients of step <paramref name="step"/> (1-based, after the increment) under <paramref name="options"/>.</summary>
    public static AdamWUpdate For(AdamW.Options options, long step)
    {
        double lr = options.LearningRate!.Value, beta1 = options.beta1!.Value, beta2 = options.beta2!.Value;
        double biasCorrection1 = 1 - Math.Pow(beta1, step), biasCorrection2 = 1 - Math.Pow(beta2, step);
        return new AdamWUpdate(1 - lr * options.weight_decay!.Value, beta1, beta2, options.eps!.Value, Math.Sqrt(biasCorrection2), lr / biasCorrection1);
    }

    /// <summary>
    /// Updates <paramref name="parameter"/>, <paramref name="expAvg"/> and <paramref name="expAvgSq"/> in place;
    /// <paramref name="denominator"/> is scratch of the same size. <c>param.mul_(1 − lr·wd)</c> is skipped when it
    /// multiplies by exactly 1, which leaves every value unchanged.
    /// </summary>
    public void Apply(torch.Tensor parameter, torch.Tensor grad, torch.Tensor expAvg, torch.Tensor expAvgSq, torch.Tensor denominator)
    {
        if (Decay != 1) parameter.mul_(Decay);
        expAvg.mul_(Beta1).add_(grad, alpha: 1 - Beta1);
        expAvgSq.mul_(Beta2).addcmul_(grad, grad, value: 1 - Beta2);
        denominator.copy_(expAvgSq).sqrt_().div_(DenominatorScale).add_(Eps);
        parameter.addcdiv_(expAvg, denominator, value: -StepSize);
    }
}
