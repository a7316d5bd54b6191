namespace Bagel.Training.Ema;

/// <summary>An EMA of the trained weights that the loop updates after each optimizer step and saves in checkpoints.</summary>
public interface IExponentialMovingAverage
{
    /// <summary>The decay (the reference's <c>ema</c>, default 0.9999).</summary>
    double Decay { get; }

    /// <summary>One update, <c>ema = decay·ema + (1−decay)·param</c> where the live parameter requires grad; returns how many tensors were averaged.</summary>
    int Update();

    /// <summary>Saves the EMA weights as safetensors at <paramref name="path"/>.</summary>
    void Save(string path, CancellationToken cancellationToken = default);

    /// <summary>Loads EMA weights from <paramref name="path"/>, non-strictly and without the keys <paramref name="keyMap"/> maps to null.</summary>
    void LoadWeights(string path, Func<string, string?>? keyMap = null, Microsoft.Extensions.Logging.ILogger? logger = null);
}
