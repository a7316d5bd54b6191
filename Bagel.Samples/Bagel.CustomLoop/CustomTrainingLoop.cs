using System.Diagnostics;
using Bagel.Core.Batching;
using Bagel.Training.Checkpoints;
using Bagel.Training.Logging;
using Bagel.Training.Loop;
using Bagel.Training.Loss;
using Bagel.Training.Metrics;
using Bagel.Training.Optimization;
using Bagel.Training.Options;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace Bagel.CustomLoop;

/// <summary>
/// A training loop you own, read top to bottom: resume, then per step the batches, forward, loss, backward, clip,
/// AdamW, EMA, schedule, a log line and a checkpoint. The library supplies the pieces; the <see cref="TrainingSession"/>
/// holds the run's state (optimizer, schedule, EMA, RNG streams, NaN guard) and reads and writes the checkpoints in the
/// <see cref="Trainer"/>'s layout, so either resumes the other. What each piece owns: docs/custom-loop.md.
/// </summary>
public static class CustomTrainingLoop
{
    /// <summary>
    /// Trains <paramref name="run"/> from its latest checkpoint (or from scratch) until <c>total_steps</c>, or until
    /// <paramref name="stopAfter"/> steps are completed, or <paramref name="cancellationToken"/> is cancelled (the step
    /// in progress finishes); then writes a final checkpoint.
    /// </summary>
    /// <param name="run">The model, data and flags.</param>
    /// <param name="logger">Receives the reference's step line and the session's messages.</param>
    /// <param name="onStep">Called after every step with its losses, learning rate and gradient norm; optional.</param>
    /// <param name="stopAfter">Stop once this many steps are completed (as an interrupted run would); null runs to <c>total_steps</c>.</param>
    /// <param name="cancellationToken">Stops after the current step.</param>
    /// <returns>The final checkpoint.</returns>
    public static async Task<CheckpointInfo> TrainAsync(TinyRun run, ILogger logger, Action<TrainingStepReport>? onStep = null,
        long? stopAfter = null, CancellationToken cancellationToken = default)
    {
        TrainingOptions flags = run.Configuration.Training;
        int microBatches = flags.GradientAccumulationSteps;
        long lastStep = Math.Min(flags.TotalSteps, stopAfter ?? long.MaxValue);

        // The run's state: AdamW over the trainable parameters, the LR schedule, the EMA copy, the RNG streams, the NaN
        // guard and the checkpoint writer, all from the flags. The model stays ours; the session disposes the rest.
        using var session = new TrainingSession(run.Model, run.Configuration, logger: logger);

        // Seed torch's generator from global_seed, then load the latest checkpoint in checkpoint_dir (auto_resume):
        // weights, EMA, optimizer, schedule, RNG states and counters. The data resumes after its last saved batch.
        TrainingResume resume = session.Restore(cancellationToken);
        TrainProgress progress = resume.Progress;
        logger.LogInformation("Custom loop: steps {Start} to {End}", progress.CompletedSteps, lastStep);

        // The data: an endless IAsyncEnumerable<PackedBatch>. Disposing the enumerator stops its workers; the stream is
        // not cancelled with the run, so the step in progress always gets its batches.
        await using IAsyncEnumerator<PackedBatch> batches = run.Data.ReadAsync(resume.DataStatus).GetAsyncEnumerator();
        var throughput = new ThroughputWindow(run.Flops, flags.PeakDeviceTflops);
        long windowStart = Stopwatch.GetTimestamp();
        int windowSteps = 0;
        // session.Precision runs the forward and backward: the model itself in fp32, a bf16 working copy over the float32
        // master weights in bf16 mixed precision (TrainingSessionOptions.Precision; docs/precision.md).
        session.Precision.ComputeModel.Module.train();

        for (long step = progress.CompletedSteps; step < lastStep && !cancellationToken.IsCancellationRequested; step++)
        {
            // Forward and backward per micro-batch; Combine already divides by gradient_accumulation_steps.
            double total = 0, mse = 0, ce = 0;
            long ceTokens = 0, mseTokens = 0, samples = 0, tokens = 0;
            for (int micro = 0; micro < microBatches; micro++)
            {
                if (!await batches.MoveNextAsync()) throw new InvalidOperationException("The data stream ended; it should never end.");
                using PackedBatch batch = batches.Current;
                using var scope = torch.NewDisposeScope(); // frees every tensor this micro-batch made, gradients excepted
                session.Precision.BeforeForward();
                ModelLossOutputs outputs = session.Precision.ComputeModel.Forward(batch);
                StepLoss loss = TrainingLoss.Combine(outputs.CePerToken, outputs.CeTokenWeights, outputs.MseSquaredError, session.LossWeights);
                loss.Total.backward();
                session.Precision.AfterBackward();
                total += loss.Total.item<float>();
                mse += loss.Mse.item<float>() / microBatches;
                ce += loss.Ce.item<float>() / microBatches;
                (ceTokens, mseTokens) = (ceTokens + loss.CeTokens, mseTokens + loss.MseTokens);
                (samples, tokens) = (samples + batch.Samples.Count, tokens + batch.SequenceLength);
                throughput.Add(batch.SequenceLength, batch.SampleLens);
            }

            // The update, in the reference's order: clip to max_grad_norm, skip a NaN/Inf step, AdamW, EMA, then the
            // schedule moves on either way. (session.Stepper.Step(step, total) makes these same calls in one.)
            double lr = session.Scheduler.CurrentLearningRate, gradNorm;
            bool skipped;
            using (torch.NewDisposeScope())
            {
                gradNorm = GradientClipping.ClipGradNorm(session.Optimizer, flags.MaxGradNorm); // one scaling per flat buffer
                skipped = session.Guard.ShouldSkip(step, total, gradNorm); // throws after too many in a row
                if (!skipped)
                {
                    session.Optimizer.step();
                    session.Ema.Update();
                }
                session.Scheduler.Step();
                session.Optimizer.zero_grad();
            }
            progress = progress.AfterStep(tokens, samples);
            windowSteps++;

            // The reference's log line; speed and MFU cover the steps since the last line.
            if (step % flags.LogEvery == 0)
            {
                ThroughputReport speed = throughput.Report(Stopwatch.GetElapsedTime(windowStart), windowSteps);
                TrainingLog.Step(logger, TrainLogLine.Format(step, mse, ce, speed, lr, gradNorm, run.Data.Skips.Total));
                throughput.Reset();
                (windowStart, windowSteps) = (Stopwatch.GetTimestamp(), 0);
            }
            onStep?.Invoke(new TrainingStepReport(step, mse, ce, total, lr, gradNorm, skipped, ceTokens, mseTokens, samples, tokens));

            // A checkpoint every save_every steps, in the Trainer's layout, with the data status after the last batch taken.
            if (progress.CompletedSteps % flags.SaveEvery == 0 && progress.CompletedSteps < lastStep)
                session.Save(progress, run.Data.CaptureStatus(), CancellationToken.None);
        }
        return session.Save(progress, run.Data.CaptureStatus(), CancellationToken.None); // never cancelled: the writer is atomic
    }
}
