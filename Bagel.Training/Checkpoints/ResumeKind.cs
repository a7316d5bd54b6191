namespace Bagel.Training.Checkpoints;

/// <summary>How a run starts.</summary>
public enum ResumeKind
{
    /// <summary>Random initialisation, step 0 (no <c>resume_from</c>, or it does not exist).</summary>
    Scratch,

    /// <summary>Weights only (<c>resume_model_only</c>): optimizer, scheduler, data and step start fresh.</summary>
    ModelOnly,

    /// <summary>Everything: weights, EMA, optimizer, scheduler, data status, RNG states and the step.</summary>
    Full,
}
