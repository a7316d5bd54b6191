using Bagel.Core.Randomness;

namespace Bagel.Training.Checkpoints;

/// <summary>
/// Every RNG state of the training process (<c>rng_state.json</c>): TorchSharp's global CPU generator (dropout,
/// initialisation) and each named <see cref="RandomStreams"/> stream of the loop. Data-worker RNGs live in the data
/// status. CUDA generator states are not captured yet.
/// </summary>
/// <param name="FormatVersion">Format version; <see cref="CurrentFormatVersion"/> when written.</param>
/// <param name="TorchGlobal">TorchSharp's global CPU generator state (base64 in JSON).</param>
/// <param name="Streams">States of the loop's named streams, by purpose.</param>
public sealed record RngStateDocument(int FormatVersion, byte[] TorchGlobal, IReadOnlyDictionary<string, RandomSourceState> Streams)
{
    /// <summary>Format version this build writes and reads.</summary>
    public const int CurrentFormatVersion = 1;

    /// <summary>Captures the global generator and, when given, every stream of <paramref name="streams"/>.</summary>
    public static RngStateDocument Capture(RandomStreams? streams = null) =>
        new(CurrentFormatVersion, TorchGlobalRandom.GetState(), streams?.GetStates() ?? new Dictionary<string, RandomSourceState>());

    /// <summary>Restores the global generator and, when given, the streams.</summary>
    public void Restore(RandomStreams? streams = null)
    {
        TorchGlobalRandom.SetState(TorchGlobal);
        if (streams is not null && Streams.Count > 0) streams.SetStates(Streams);
    }

    /// <summary>Reads <paramref name="path"/>, checking the format version.</summary>
    public static RngStateDocument Read(string path)
    {
        RngStateDocument document = CheckpointFiles.ReadJson(path, TrainingJsonContext.Default.RngStateDocument);
        return document.FormatVersion == CurrentFormatVersion ? document
            : throw new CheckpointException($"{path} has RNG-state format version {document.FormatVersion}; this build reads {CurrentFormatVersion}.");
    }

    /// <summary>Writes to <paramref name="path"/> atomically.</summary>
    public void Write(string path) => CheckpointFiles.WriteJsonAtomic(path, this, TrainingJsonContext.Default.RngStateDocument);
}
