using Bagel.Core.Batching;
using Bagel.Core.Randomness;
using Bagel.Training.Loop;
using Bagel.Training.Loss;
using TorchSharp;

namespace Bagel.Training.Validation;

/// <summary>
/// Evaluates a model on a <see cref="ValidationSet"/> without disturbing training: no gradients, the module in eval
/// mode (every submodule's train/eval flag is put back afterwards), and torch's global generator — from which the
/// model draws its VAE-posterior and flow-matching noise — seeded per group from a fixed seed and restored to its
/// previous state afterwards. So two evaluations of the same weights give the same numbers, and training after an
/// evaluation draws exactly the noise it would have drawn without it (exact resume still holds).
/// </summary>
public static class ValidationEvaluator
{
    /// <summary>Purpose name of the per-group noise seeds (see <see cref="GroupSeed"/>).</summary>
    public const string RandomPurpose = "validation_noise";

    /// <summary>
    /// The seed torch's global generator gets before the batches of <paramref name="group"/>: derived from
    /// <paramref name="seed"/> and the group name, so adding or removing another group does not change this group's noise.
    /// </summary>
    /// <param name="seed">The run's seed (the trainer passes <c>global_seed</c>).</param>
    /// <param name="group">The dataset group name.</param>
    /// <returns>A non-negative 63-bit seed.</returns>
    public static long GroupSeed(long seed, string group) => (long)(SeedDerivation.Derive(seed, $"{RandomPurpose}/{group}") & long.MaxValue);

    /// <summary>Evaluates every group of <paramref name="set"/> in order.</summary>
    /// <param name="model">The model (its <see cref="ITrainableModel.Module"/> is put in eval mode for the evaluation).</param>
    /// <param name="set">The batches.</param>
    /// <param name="weights">The loss reduction (only <see cref="LossWeights.CeLossReweighting"/> changes the figures).</param>
    /// <param name="seed">The fixed seed of the evaluation noise (see <see cref="GroupSeed"/>).</param>
    /// <param name="cancellationToken">Checked between batches.</param>
    /// <returns>One entry per group.</returns>
    /// <exception cref="OperationCanceledException">Cancelled between batches (the generator and modes are restored).</exception>
    public static IReadOnlyList<GroupValidationLoss> Evaluate(ITrainableModel model, ValidationSet set, LossWeights weights, long seed,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(set);
        ArgumentNullException.ThrowIfNull(weights);
        LossWeights reduction = weights with { GradientAccumulationSteps = 1 };
        byte[] generatorState = TorchGlobalRandom.GetState();
        List<(torch.nn.Module Module, bool Training)> modes = TrainingModes(model.Module);
        try
        {
            model.Module.eval();
            using var noGrad = torch.no_grad();
            var results = new List<GroupValidationLoss>(set.Groups.Count);
            foreach (ValidationGroup group in set.Groups)
            {
                torch.manual_seed(GroupSeed(seed, group.Name)).Dispose(); // the CPU generator only: the one the model's noise comes from
                results.Add(EvaluateGroup(model, group, reduction, cancellationToken));
            }
            return results;
        }
        finally
        {
            foreach ((torch.nn.Module module, bool training) in modes) module.train(training);
            TorchGlobalRandom.SetState(generatorState);
        }
    }

    private static GroupValidationLoss EvaluateGroup(ITrainableModel model, ValidationGroup group, LossWeights reduction, CancellationToken cancellationToken)
    {
        double mseSum = 0, ceSum = 0;
        long mseTokens = 0, ceTokens = 0;
        foreach (PackedBatch batch in group.Batches)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = torch.NewDisposeScope();
            ModelLossOutputs outputs = model.Forward(batch);
            // A batch without tokens of one kind contributes nothing to it (training would divide 0 by 0 there).
            torch.Tensor? ce = outputs.CePerToken is { } c && c.shape[0] > 0 ? c : null;
            torch.Tensor? mse = outputs.MseSquaredError is { } m && m.shape[0] > 0 ? m : null;
            if (ce is null && mse is null) continue;
            StepLoss loss = TrainingLoss.Combine(ce, ce is null ? null : outputs.CeTokenWeights, mse, reduction);
            mseSum += loss.Mse.item<float>() * (double)loss.MseTokens;
            ceSum += loss.Ce.item<float>() * (double)loss.CeTokens;
            mseTokens += loss.MseTokens;
            ceTokens += loss.CeTokens;
        }
        return new GroupValidationLoss(group.Name, mseTokens > 0 ? mseSum / mseTokens : 0, ceTokens > 0 ? ceSum / ceTokens : 0,
            mseTokens, ceTokens, group.Batches.Count);
    }

    /// <summary>The module's and every submodule's train flag, ancestors before descendants (so restoring in order is exact:
    /// <c>train(bool)</c> recurses into children).</summary>
    private static List<(torch.nn.Module, bool)> TrainingModes(torch.nn.Module root) =>
        [(root, root.training), .. root.named_modules().Select(m => (m.module, m.module.training))];
}
