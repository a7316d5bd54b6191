using Bagel.Core.Metrics;
using Bagel.Training.Metrics;
using Microsoft.Extensions.Logging;

namespace Bagel.Training.ValidationImages;

/// <summary>The trainer's side of validation images: when to render, with which weights, and where the grid goes
/// (the files, every <see cref="IImageMetricSink"/>, a log line, the callback). <paramref name="weights"/> gives the weights
/// of each render, held until it ends (a LoRA run's adapters compute with the EMA adapters meanwhile).</summary>
internal sealed partial class ValidationImageRunner(ValidationImageOptions options, int everySteps, ValidationImageRenderer renderer,
    Func<ValidationWeights> weights, IReadOnlyList<IMetricSink> sinks, ILogger logger, TimeProvider time, int cpuThreads, bool publish = true)
{
    /// <summary>True when a render is due after <paramref name="completedSteps"/> steps (the end of the run aside).</summary>
    public bool IsDue(long completedSteps) => completedSteps > 0 && completedSteps % everySteps == 0;

    /// <summary>Renders, writes the grid to the image sinks, logs where it is and calls the callback.</summary>
    public async Task<ValidationImageResult> RunAsync(long completedSteps)
    {
        ValidationImageResult result;
        byte[]? png;
        int height, width;
        // Not cancellable: a stop request finishes the step (and its render) and then writes the final checkpoint.
        using (Loop.TorchThreadScope.Enter(cpuThreads)) // the run's thread count, as its steps hold it
        using (ValidationWeights held = weights())
            (result, png, height, width) = renderer.RenderGrid(held.Model, completedSteps, CancellationToken.None, held.AlsoEval, write: publish);
        if (!publish) return result; // a rank that only takes part in the collectives of a parameter-sharded forward
        if (png is not null)
        {
            var image = new StepImage(options.Tag, completedSteps, time.GetUtcNow(), png, height, width);
            foreach (IImageMetricSink sink in sinks.OfType<IImageMetricSink>()) await sink.WriteImageAsync(image, CancellationToken.None);
        }
        LogRendered(logger, completedSteps, result.Rendered, result.Answered, options.UseEma ? "EMA" : "model", result.PngPath ?? "(no entry rendered)",
            result.SidecarPath, result.Elapsed.TotalSeconds);
        options.OnRendered?.Invoke(result);
        return result;
    }

    [LoggerMessage(EventId = 11, EventName = "ValidationImages", Level = LogLevel.Information,
        Message = "(step={Step:D7}) Validation images: {Images} image(s) and {Answers} answer(s) with the {Weights} weights into {Png} (entries and answers in {Sidecar}) in {Seconds:F1} s")]
    private static partial void LogRendered(ILogger logger, long step, int images, int answers, string weights, string png, string sidecar, double seconds);
}
