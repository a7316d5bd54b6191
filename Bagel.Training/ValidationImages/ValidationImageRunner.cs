using Bagel.Core.Metrics;
using Bagel.Models.Bagel;
using Bagel.Training.Metrics;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace Bagel.Training.ValidationImages;

/// <summary>The trainer's side of validation images: when to render, with which weights, and where the grid goes
/// (the files, every <see cref="IImageMetricSink"/>, a log line, the callback). <paramref name="prepare"/>, when given,
/// runs before each render and its result is disposed after it (a LoRA run puts the EMA adapters into the forward).</summary>
internal sealed partial class ValidationImageRunner(ValidationImageOptions options, int everySteps, ValidationImageRenderer renderer,
    Func<torch.nn.Module> weights, IReadOnlyList<IMetricSink> sinks, ILogger logger, TimeProvider time, Func<IDisposable>? prepare = null)
{
    /// <summary>True when a render is due after <paramref name="completedSteps"/> steps (the end of the run aside).</summary>
    public bool IsDue(long completedSteps) => completedSteps > 0 && completedSteps % everySteps == 0;

    /// <summary>Renders, writes the grid to the image sinks, logs where it is and calls the callback.</summary>
    public async Task<ValidationImageResult> RunAsync(long completedSteps)
    {
        var model = (BagelModel)weights();
        ValidationImageResult result;
        byte[]? png;
        int height, width;
        using (prepare?.Invoke())
        {
            // Not cancellable: a stop request finishes the step (and its render) and then writes the final checkpoint.
            (result, png, height, width) = renderer.RenderGrid(model, completedSteps, CancellationToken.None);
        }
        if (png is not null)
        {
            var image = new StepImage(options.Tag, completedSteps, time.GetUtcNow(), png, height, width);
            foreach (IImageMetricSink sink in sinks.OfType<IImageMetricSink>()) await sink.WriteImageAsync(image, CancellationToken.None);
        }
        LogRendered(logger, completedSteps, result.Rendered, options.UseEma ? "EMA" : "model", result.PngPath ?? "(no text-to-image prompt)", result.SidecarPath, result.Elapsed.TotalSeconds);
        options.OnRendered?.Invoke(result);
        return result;
    }

    [LoggerMessage(EventId = 11, EventName = "ValidationImages", Level = LogLevel.Information,
        Message = "(step={Step:D7}) Validation images: {Count} prompt(s) rendered with the {Weights} weights into {Png} (prompts in {Sidecar}) in {Seconds:F1} s")]
    private static partial void LogRendered(ILogger logger, long step, int count, string weights, string png, string sidecar, double seconds);
}
