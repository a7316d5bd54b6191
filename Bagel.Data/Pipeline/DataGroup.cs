using Bagel.Data.Samples;
using Bagel.Data.Sources;

namespace Bagel.Data.Pipeline;

/// <summary>One dataset group of the pipeline: where its records come from and how they become samples.</summary>
/// <param name="Name">The group name (the YAML top-level key).</param>
/// <param name="Weight">The sampling weight.</param>
/// <param name="IsMandatory">Every batch starts with one sample of this group.</param>
/// <param name="Source">The raw records (one instance serves every worker).</param>
/// <param name="Builder">Turns records into samples (<see cref="SampleBuilder"/> for the SDK's sources).</param>
/// <param name="ResumeDataStatus">When false, this group restarts from the beginning on resume (<c>resume_data_status</c>).</param>
public sealed record DataGroup(string Name, double Weight, bool IsMandatory, RawSampleSource Source, ISampleBuilder Builder, bool ResumeDataStatus = true);
