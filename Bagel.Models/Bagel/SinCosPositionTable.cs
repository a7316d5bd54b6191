using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Models.Bagel;

/// <summary>
/// The reference's fixed 2D sin-cos table (<c>get_2d_sincos_pos_embed</c>, modeling_utils.py, from DiT/MAE), built in
/// float64. Row p = r·G + c over a G × G grid. Features [0, H/2) embed the <b>column</b> c and [H/2, H) the <b>row</b>
/// r (the reference's meshgrid puts w first although its variables say h). Each half is the 1-D embedding of its
/// coordinate u with D = H/2 features: ω_k = 1 / 10000^(k / (D/2)), then concat(sin(u·ω), cos(u·ω)), sines first.
/// </summary>
public static class SinCosPositionTable
{
    /// <summary>The base of the 1-D frequencies (reference: <c>10000**omega</c>).</summary>
    public const double FrequencyBase = 10000.0;

    /// <summary>Builds the table as float64 values, row-major [G², H].</summary>
    /// <param name="hiddenSize">H; must be a multiple of 4 (two halves, each sin/cos).</param>
    /// <param name="gridSize">G, positions per side (<c>max_latent_size</c> or 70 for ViT).</param>
    /// <returns>The table, G²·H values.</returns>
    /// <exception cref="ArgumentOutOfRangeException">H is not a positive multiple of 4 or G is not positive.</exception>
    public static double[] BuildValues(int hiddenSize, int gridSize)
    {
        if (hiddenSize <= 0 || hiddenSize % 4 != 0)
            throw new ArgumentOutOfRangeException(nameof(hiddenSize), hiddenSize, "The sin-cos table needs a hidden size that is a positive multiple of 4.");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(gridSize);
        int halfDim = hiddenSize / 2, quarter = hiddenSize / 4;
        var omega = new double[quarter];
        for (int k = 0; k < quarter; k++)
        {
            double exponent = k / (halfDim / 2.0);
            omega[k] = 1.0 / Math.Pow(FrequencyBase, exponent);
        }
        var table = new double[(long)gridSize * gridSize * hiddenSize];
        for (int r = 0; r < gridSize; r++)
        {
            for (int c = 0; c < gridSize; c++)
            {
                long rowStart = ((long)r * gridSize + c) * hiddenSize;
                Fill1D(table, rowStart, c, omega);
                Fill1D(table, rowStart + halfDim, r, omega);
            }
        }
        return table;
    }

    /// <summary>Builds the table as a float64 tensor [G², H] on the CPU.</summary>
    /// <param name="hiddenSize">H; a multiple of 4.</param>
    /// <param name="gridSize">G.</param>
    /// <returns>The table; the caller owns it.</returns>
    public static Tensor Build(int hiddenSize, int gridSize) =>
        tensor(BuildValues(hiddenSize, gridSize), [(long)gridSize * gridSize, hiddenSize], ScalarType.Float64);

    private static void Fill1D(double[] table, long start, int position, double[] omega)
    {
        for (int k = 0; k < omega.Length; k++)
        {
            double angle = position * omega[k];
            table[start + k] = Math.Sin(angle);
            table[start + omega.Length + k] = Math.Cos(angle);
        }
    }
}
