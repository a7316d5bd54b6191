using System.Text.Json.Serialization;
using Bagel.Training.Checkpoints;
using Bagel.Training.Optimization;
using Bagel.Training.Options;
using Bagel.Training.Schedules;

namespace Bagel.Training;

/// <summary>Source-generated JSON for Bagel.Training's own files: snake_case keys, indented.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    WriteIndented = true,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(SchedulerState))]
[JsonSerializable(typeof(OptimizerStateDocument))]
[JsonSerializable(typeof(TrainState))]
[JsonSerializable(typeof(TrainingConfiguration))]
[JsonSerializable(typeof(RunInfo))]
[JsonSerializable(typeof(RngStateDocument))]
internal sealed partial class TrainingJsonContext : JsonSerializerContext;
