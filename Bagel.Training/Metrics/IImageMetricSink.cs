namespace Bagel.Training.Metrics;

/// <summary>An encoded image logged at a step (e.g. the validation grid).</summary>
/// <param name="Tag">The name it is shown under (e.g. <c>val/images</c>).</param>
/// <param name="Step">Completed optimizer steps when it was made.</param>
/// <param name="Timestamp">When it was made.</param>
/// <param name="Png">The PNG bytes.</param>
/// <param name="Height">Height in pixels.</param>
/// <param name="Width">Width in pixels.</param>
public sealed record StepImage(string Tag, long Step, DateTimeOffset Timestamp, byte[] Png, int Height, int Width);

/// <summary>A metric sink that also takes images (<see cref="TensorBoardMetricSink"/> does: TensorBoard's Images tab).</summary>
public interface IImageMetricSink
{
    /// <summary>Writes <paramref name="image"/>.</summary>
    /// <param name="image">The image.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the image is written.</returns>
    ValueTask WriteImageAsync(StepImage image, CancellationToken cancellationToken = default);
}
