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
        long start = Stopwatch.GetTimestamp();
        double norm = _hooks?.ClipGradNorm(_maxGradNorm) ?? GradientClipping.ClipGradNorm(_optimizer, _maxGradNorm);
        double clipSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        double adamWSeconds = 0, emaSeconds = 0;
        double lr = _scheduler.CurrentLearningRate;
        bool skip;
        try
        {
            skip = Guard.ShouldSkip(stepIndex, loss, norm);
        }
        finally
        {
            // Never leave NaN gradients behind, even when the guard stops the run.
            if (!double.IsFinite(loss) || !double.IsFinite(norm)) ZeroGradients();
        }
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

    private void ZeroGradients()
    {
        if (_hooks is not null) _hooks.ZeroGradients();
        else _optimizer.zero_grad();
    }
}
