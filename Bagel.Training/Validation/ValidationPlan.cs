namespace Bagel.Training.Validation;

/// <summary>What <c>TrainerBuilder.UseValidation</c> configured, resolved at <c>Build</c>.</summary>
/// <param name="Set">The validation set (owned by the caller).</param>
/// <param name="EverySteps">Evaluate every this many completed steps (already resolved: <c>validate_every</c>, or
/// <c>save_every</c> when that is 0); the end of the run is always evaluated.</param>
/// <param name="OnEval">Callbacks receiving each evaluation.</param>
internal sealed record ValidationPlan(ValidationSet Set, int EverySteps, IReadOnlyList<Action<ValidationReport>> OnEval);
