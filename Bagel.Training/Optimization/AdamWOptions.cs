using Bagel.Training.Options;

namespace Bagel.Training.Optimization;

/// <summary>AdamW settings; the defaults are the reference's (training.md 5.3).</summary>
public sealed class AdamWOptions
{
    /// <summary>Base learning rate (the schedule multiplies it). Default <c>1e-4</c> (reference <c>lr</c>).</summary>
    public double LearningRate { get; set; } = 1e-4;

    /// <summary>β1. Default <c>0.9</c>.</summary>
    public double Beta1 { get; set; } = 0.9;

    /// <summary>β2. Default <c>0.95</c>.</summary>
    public double Beta2 { get; set; } = 0.95;

    /// <summary>ε. Default <c>1e-15</c>.</summary>
    public double Eps { get; set; } = 1e-15;

    /// <summary>Decoupled weight decay. Default <c>0</c> (the reference does not decay weights).</summary>
    public double WeightDecay { get; set; }

    /// <summary>
    /// Lays parameters, gradients and moments out in flat buffers and steps them with <see cref="FlatBufferAdamW"/>
    /// (bit-identical to TorchSharp's AdamW, fewer kernel launches). Default <c>true</c>; <c>false</c>: TorchSharp's
    /// per-tensor AdamW.
    /// </summary>
    public bool FlatBuffers { get; set; } = true;

    /// <summary>
    /// With <see cref="FlatBuffers"/>, steps float32 CPU buffers in one fused pass (<see cref="FlatBufferAdamW.FusedKernel"/>:
    /// bit-identical, about half the memory traffic of libtorch's operations). Default <c>true</c>; <c>false</c>: libtorch's
    /// operations over the flat buffers. Other dtypes and devices always use libtorch's operations.
    /// </summary>
    public bool FusedKernel { get; set; } = true;

    /// <summary>The settings the reference derives from its training flags.</summary>
    public static AdamWOptions FromTrainingOptions(TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new AdamWOptions { LearningRate = options.Lr, Beta1 = options.Beta1, Beta2 = options.Beta2, Eps = options.Eps };
    }
}
