using Bagel.Core.Randomness;
using Bagel.Data.Packing;
using Bagel.Data.Sources;

namespace Bagel.Data.Samples;

/// <summary>
/// Turns a raw record into a packable sample. <see cref="SampleBuilder"/> handles the SDK's payloads; implement this
/// for a custom source whose payloads it does not know (register both with <c>DataPipelineFactory.RegisterGroupKind</c>).
/// Implementations must be thread-safe: every data worker calls the same instance.
/// </summary>
public interface ISampleBuilder
{
    /// <summary>Builds the sample, or returns null after counting a skip (never throws for bad data).</summary>
    /// <param name="raw">The record.</param>
    /// <param name="random">The sample's own draws (seeded per sample, so resume rebuilds it exactly).</param>
    /// <returns>The sample (the caller owns it), or null.</returns>
    PackableSample? Build(RawSample raw, IRandomSource random);
}
