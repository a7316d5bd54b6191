using System.Diagnostics;
using Bagel.Training.Ema;
using Bagel.Training.Logging;
using Bagel.Training.Schedules;
using Microsoft.Extensions.Logging;
using TorchSharp.Modules;

namespace Bagel.Training.Optimization;

/// <summary>
/// The reference's accumulation boundary (training.md 5.4), independent of the model: clip the global gradient norm
/// to <c>max_grad_norm</c>, optimizer step, scheduler step, EMA update, zero grads. A NaN or infinite loss or norm
/// skips the optimizer and EMA updates (counted by the <see cref="NonFiniteStepGuard"/>) but still advances the
/// schedule, so the learning rate stays tied to the step index.
/// <para>
/// With <see cref="FlatBufferAdamW"/> and its fused pass (the default), the stepper owns the order and folds its work
/// into that pass (<see cref="FlatBufferAdamW.FoldStepperWork"/>): gradient norm (a separate read, the same bits),
/// guard, then one pass per float32 CPU bucket that scales each gradient by the clip coefficient, steps AdamW,
/// averages the EMA from the new weight and zeroes the gradient; anything the pass cannot take runs the separate
/// operations after it; then the schedule. Weights, moments, EMA, norms and checkpoints are bit for bit the same.
/// </para>
/// </summary>
public sealed class OptimizerStepper
{
    private readonly AdamW _optimizer;
    private readonly LearningRateScheduler _scheduler;
    private readonly IExponentialMovingAverage? _ema;
    private readonly double _maxGradNorm;
    private readonly ILogger? _logger;
    private readonly IOptimizerStepHooks? _hooks;

    /// <summary>
    /// Creates the stepper. <paramref name="maxGradNorm"/> is the reference's <c>max_grad_norm</c> (default 1.0);
    /// <paramref name="hooks"/> replace the clipping and zeroing and run after each applied update (sharded training).
    /// </summary>
    public OptimizerStepper(AdamW optimizer, LearningRateScheduler scheduler, IExponentialMovingAverage? ema, NonFiniteStepGuard guard,
        double maxGradNorm = 1.0, ILogger? logger = null, IOptimizerStepHooks? hooks = null)
    {
        _hooks = hooks;
        _optimizer = optimizer ?? throw new ArgumentNullException(nameof(optimizer));
        _scheduler = scheduler ?? throw new ArgumentNullException(nameof(scheduler));
        Guard = guard ?? throw new ArgumentNullException(nameof(guard));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxGradNorm);
        _ema = ema;
        _maxGradNorm = maxGradNorm;
        _logger = logger;
    }

    /// <summary>The non-finite guard (its counters go into the train state).</summary>
    public NonFiniteStepGuard Guard { get; }

    /// <summary>
    /// Finishes step <paramref name="stepIndex"/> after backward; <paramref name="loss"/> is the step's total loss. The
    /// result carries the wall time of each part (clip, AdamW, EMA, zero_grad), measured with <see cref="Stopwatch"/>.
    /// </summary>
    /// <exception cref="NonFiniteLossException">Too many non-finite steps in a row.</exception>
    public OptimizerStepResult Step(long stepIndex, double loss)
    {
        // The fold needs the stepper to own clipping and zeroing; sharded training (hooks) clips and zeroes its own way.
        if (_hooks is null && _optimizer is FlatBufferAdamW { FusedKernel: true, FoldStepperWork: true } flat && flat.GradientBuffers() is not null)
            return StepFolded(flat, stepIndex, loss);
        long start = Stopwatch.GetTimestamp();
        double norm = _hooks?.ClipGradNorm(_maxGradNorm) ?? GradientClipping.ClipGradNorm(_optimizer, _maxGradNorm);
        double clipSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        double adamWSeconds = 0, emaSeconds = 0;
        double lr = _scheduler.CurrentLearningRate;
        bool skip = ShouldSkip(stepIndex, loss, norm);
        if (skip)
        {
            if (_logger is not null) TrainingLog.NonFiniteStep(_logger, stepIndex, loss, norm, Guard.ConsecutiveSkipped, Guard.TotalSkipped);
        }
        else
        {
            start = Stopwatch.GetTimestamp();
            _optimizer.step();
            adamWSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            start = Stopwatch.GetTimestamp();
            _ema?.Update();
            _hooks?.AfterUpdate();
            emaSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        _scheduler.Step();
        start = Stopwatch.GetTimestamp();
        ZeroGradients();
        double zeroGradSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return new OptimizerStepResult(norm, lr, skip)
        {
            ClipSeconds = clipSeconds, AdamWSeconds = adamWSeconds, EmaSeconds = emaSeconds, ZeroGradSeconds = zeroGradSeconds,
        };
    }

    /// <summary>
    /// <see cref="Step"/> with the clip scaling, the EMA update and the zeroing folded into the flat optimizer's fused
    /// pass (<see cref="FlatBufferAdamW.FoldStepperWork"/>): the gradient norm first (a separate read pass, the same
    /// bits), the guard, then one pass per float32 CPU bucket that scales each gradient element, steps, averages the
    /// EMA slot of the new parameter and zeroes the gradient; what the pass cannot take (other buckets, EMA tensors
    /// outside its buckets) runs the separate operations after it, and the schedule steps last. The results are the
    /// same bits as the separate path. The clip time is the norm alone; the AdamW time includes what was folded.
    /// </summary>
    private OptimizerStepResult StepFolded(FlatBufferAdamW flat, long stepIndex, double loss)
    {
        long start = Stopwatch.GetTimestamp();
        (double norm, double coefficientValue, TorchSharp.torch.Tensor? coefficient) = GradientClipping.NormAndCoefficient(flat, _maxGradNorm);
        using TorchSharp.torch.Tensor? ownedCoefficient = coefficient;
        double clipSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        double adamWSeconds = 0, emaSeconds = 0;
        double lr = _scheduler.CurrentLearningRate;
        bool skip = ShouldSkip(stepIndex, loss, norm);
        FlatBufferAdamW.FoldedStep? folded = null;
        if (skip)
        {
            if (_logger is not null) TrainingLog.NonFiniteStep(_logger, stepIndex, loss, norm, Guard.ConsecutiveSkipped, Guard.TotalSkipped);
        }
        else
        {
            var foldable = _ema as IFoldableEma;
            bool foldEma = foldable is { CanFold: true };
            start = Stopwatch.GetTimestamp();
            folded = flat.StepFolded(coefficient, coefficientValue, foldEma ? foldable!.Pairs : null, _ema?.Decay ?? 0);
            adamWSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            start = Stopwatch.GetTimestamp();
            if (foldEma) foldable!.UpdateRemaining(folded.CoveredPairs);
            else _ema?.Update();
            emaSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        _scheduler.Step();
        start = Stopwatch.GetTimestamp();
        if (folded is not null) flat.ZeroGradients(folded);
        else _optimizer.zero_grad();
        double zeroGradSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return new OptimizerStepResult(norm, lr, skip)
        {
            ClipSeconds = clipSeconds, AdamWSeconds = adamWSeconds, EmaSeconds = emaSeconds, ZeroGradSeconds = zeroGradSeconds,
            FoldedBuckets = folded?.ZeroedBuckets.Count(z => z) ?? 0, FoldedEmaTensors = folded?.CoveredCount ?? 0,
        };
    }

    /// <summary>The non-finite guard's decision; NaN gradients are zeroed even when the guard stops the run.</summary>
    private bool ShouldSkip(long stepIndex, double loss, double norm)
    {
        try
        {
            return Guard.ShouldSkip(stepIndex, loss, norm);
        }
        finally
        {
            if (!double.IsFinite(loss) || !double.IsFinite(norm)) ZeroGradients();
        }
    }

    private void ZeroGradients()
    {
        if (_hooks is not null) _hooks.ZeroGradients();
        else _optimizer.zero_grad();
    }
}
