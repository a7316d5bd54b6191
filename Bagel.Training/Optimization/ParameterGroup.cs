using TorchSharp.Modules;

namespace Bagel.Training.Optimization;

/// <summary>
/// A named AdamW parameter group; null settings take the optimizer's. Parameters that do not require grad are
/// dropped when the optimizer is built (the reference optimises only what receives gradients).
/// </summary>
/// <param name="Name">Group name, used in messages and the saved state.</param>
/// <param name="Parameters">The group's parameters.</param>
/// <param name="LearningRate">Base learning rate of this group; null uses <see cref="AdamWOptions.LearningRate"/>.</param>
/// <param name="WeightDecay">Weight decay of this group; null uses <see cref="AdamWOptions.WeightDecay"/>.</param>
public sealed record ParameterGroup(string Name, IReadOnlyList<Parameter> Parameters, double? LearningRate = null, double? WeightDecay = null);
