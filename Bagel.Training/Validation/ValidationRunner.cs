using System.Globalization;
using Bagel.Core.Metrics;
using Bagel.Training.Loop;
using Bagel.Training.Loss;
using Microsoft.Extensions.Logging;

namespace Bagel.Training.Validation;

/// <summary>
/// The trainer's side of validation: when to evaluate, and where the figures go (one log line per group, one metric
/// record with <c>val/{group}/mse</c> and <c>val/{group}/ce</c> to every sink, then the on-eval callbacks).
/// </summary>
internal sealed partial class ValidationRunner(ValidationPlan plan, Precision.IPrecisionPolicy precision, LossWeights weights, long seed,
    ILogger logger, IReadOnlyList<IMetricSink> sinks, TimeProvider time, int cpuThreads, bool publish = true)
{
    /// <summary>True when an evaluation is due after <paramref name="completedSteps"/> steps (the end of the run aside).</summary>
    public bool IsDue(long completedSteps) => completedSteps > 0 && completedSteps % plan.EverySteps == 0;

    /// <summary>Evaluates, logs, writes the metrics and calls the callbacks.</summary>
    public async Task<ValidationReport> RunAsync(long completedSteps)
    {
        long start = time.GetTimestamp();
        // Not cancellable: a stop request finishes the step (and its evaluation) and then writes the final checkpoint.
        precision.BeforeForward(); // bf16: evaluate the weights just updated, on the working copy
        IReadOnlyList<GroupValidationLoss> groups;
        using (TorchThreadScope.Enter(cpuThreads)) // the run's thread count, as its steps hold it
            groups = ValidationEvaluator.Evaluate(precision.ComputeModel, plan.Set, weights, seed, CancellationToken.None);
        var report = new ValidationReport(completedSteps, groups, time.GetElapsedTime(start));
        if (!publish) return report; // a rank that only takes part in the collectives of a parameter-sharded forward
        foreach (GroupValidationLoss group in groups) LogGroup(logger, FormatLine(completedSteps, group));
        if (sinks.Count > 0)
        {
            var metrics = new StepMetrics(completedSteps, time.GetUtcNow(), MetricValues(groups));
            foreach (IMetricSink sink in sinks) await sink.WriteAsync(metrics, CancellationToken.None);
        }
        foreach (Action<ValidationReport> callback in plan.OnEval) callback(report);
        return report;
    }

    /// <summary>The metric values of an evaluation: <c>val/{group}/mse</c> and <c>val/{group}/ce</c> for the losses measured.</summary>
    public static Dictionary<string, double> MetricValues(IEnumerable<GroupValidationLoss> groups)
    {
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (GroupValidationLoss group in groups)
        {
            if (group.HasMse) values[BagelMetricNames.ValidationLoss(group.Group, ReferenceMetricNames.Mse)] = group.Mse;
            if (group.HasCe) values[BagelMetricNames.ValidationLoss(group.Group, ReferenceMetricNames.Ce)] = group.Ce;
        }
        return values;
    }

    /// <summary>The log line, in the style of the reference's step line: <c>(step=0000020) Validation t2i_pretrain mse: 0.4123, ce: 0.0000</c>.</summary>
    public static string FormatLine(long step, GroupValidationLoss group) =>
        string.Create(CultureInfo.InvariantCulture, $"(step={step:D7}) Validation {group.Group} mse: {group.Mse:F4}, ce: {group.Ce:F4}");

    [LoggerMessage(EventId = 10, EventName = "Validation", Level = LogLevel.Information, Message = "{Line}")]
    private static partial void LogGroup(ILogger logger, string line);
}
