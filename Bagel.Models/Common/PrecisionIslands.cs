namespace Bagel.Models.Common;

/// <summary>
/// Test seams for the reference's float32 islands inside bf16 computation (model.md §10, docs/precision.md). Each flag
/// is per thread and off by default; a test turns one on to run the computation without that island and measure what
/// it costs. Production code never sets them.
/// </summary>
internal static class PrecisionIslands
{
    /// <summary>RMSNorm computes its mean square and rsqrt in the input dtype instead of float32.</summary>
    [ThreadStatic] internal static bool t_noRmsNormVariance;

    /// <summary>The timestep frequency embedding is computed in the MLP's dtype instead of float32.</summary>
    [ThreadStatic] internal static bool t_noTimestepEmbedding;

    /// <summary>Logits and the velocity prediction stay in the model's dtype for the CE and the squared error.</summary>
    [ThreadStatic] internal static bool t_noLossUpcast;
}
