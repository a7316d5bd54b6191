using System.Reflection;
using System.Runtime.InteropServices;
using Bagel.Training.Options;

namespace Bagel.Training.Checkpoints;

/// <summary>The resolved configuration and the versions that produced a checkpoint (<c>run_info.json</c>).</summary>
/// <param name="FormatVersion">Format version; <see cref="CurrentFormatVersion"/> when written.</param>
/// <param name="Configuration">All three argument sets as resolved for the run (snake_case keys as the flags).</param>
/// <param name="Versions">Package and runtime versions, by name.</param>
/// <param name="Model">
/// The model as built, by name (sizes, vocabulary, tokenizer), when the flags do not determine it: a model built in
/// code, such as the tiny preset's. Null when the model comes from the paths in <paramref name="Configuration"/>.
/// </param>
public sealed record RunInfo(int FormatVersion, TrainingConfiguration Configuration, IReadOnlyDictionary<string, string> Versions,
    IReadOnlyDictionary<string, string>? Model = null)
{
    /// <summary>Format version this build writes and reads.</summary>
    public const int CurrentFormatVersion = 1;

    /// <summary>Captures <paramref name="configuration"/> with the versions of Bagel.Training, TorchSharp and .NET.</summary>
    /// <param name="configuration">The configuration the trainer runs with.</param>
    /// <param name="model">The model's description when built in code (see <see cref="Model"/>); optional.</param>
    public static RunInfo Capture(TrainingConfiguration configuration, IReadOnlyDictionary<string, string>? model = null)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var versions = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["Bagel.Training"] = VersionOf(typeof(RunInfo).Assembly),
            ["Bagel.Core"] = VersionOf(typeof(Bagel.Core.Metrics.StepMetrics).Assembly),
            ["TorchSharp"] = VersionOf(typeof(TorchSharp.torch).Assembly),
            [".NET"] = RuntimeInformation.FrameworkDescription,
            ["os"] = RuntimeInformation.OSDescription,
        };
        return new RunInfo(CurrentFormatVersion, configuration, versions, model is null ? null : new SortedDictionary<string, string>(model.ToDictionary(), StringComparer.Ordinal));
    }

    /// <summary>Reads <paramref name="path"/>.</summary>
    public static RunInfo Read(string path) => CheckpointFiles.ReadJson(path, TrainingJsonContext.Default.RunInfo);

    /// <summary>Writes to <paramref name="path"/> atomically.</summary>
    public void Write(string path) => CheckpointFiles.WriteJsonAtomic(path, this, TrainingJsonContext.Default.RunInfo);

    private static string VersionOf(Assembly assembly) =>
        assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? assembly.GetName().Version?.ToString() ?? "unknown";
}
