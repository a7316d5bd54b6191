namespace Bagel.Data.Images;

/// <summary>
/// The reference's flattened 2D position ids of image patches (data/data_utils.py), used to index the ViT's learned
/// position embedding and the sin-cos tables: <c>row·G + col</c> on a grid of G = <c>max_num_patches_per_side</c>.
/// </summary>
public static class FlattenedPositionIds
{
    /// <summary>
    /// <c>get_flattened_position_ids_extrapolate</c>: patch (row, col) → <c>row·G + col</c>, rows outer.
    /// Ids stay below G² only when both patch counts are at most G; the caller validates the image size.
    /// </summary>
    public static long[] Extrapolate(int imageHeight, int imageWidth, int patchSize, int maxNumPatchesPerSide)
    {
        (int rows, int cols) = PatchCounts(imageHeight, imageWidth, patchSize, maxNumPatchesPerSide);
        var ids = new long[rows * cols];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                ids[r * cols + c] = (long)r * maxNumPatchesPerSide + c;
        return ids;
    }

    /// <summary>
    /// <c>get_flattened_position_ids_interpolate</c>: each patch's fractional coordinate <c>i/n</c> is bucketed onto
    /// the G grid (boundaries <c>j/G</c>, a value on a boundary goes to the upper bucket), so any size maps into G².
    /// The float32 arithmetic of the reference's <c>torch.arange</c> and <c>torch.bucketize</c> is reproduced.
    /// </summary>
    public static long[] Interpolate(int imageHeight, int imageWidth, int patchSize, int maxNumPatchesPerSide)
    {
        (int rows, int cols) = PatchCounts(imageHeight, imageWidth, patchSize, maxNumPatchesPerSide);
        float[] boundaries = Arange(1.0 / maxNumPatchesPerSide, 1.0, 1.0 / maxNumPatchesPerSide);
        int[] rowBuckets = Bucketize(Arange(0.0, 1.0 - 1e-6, 1.0 / rows), boundaries);
        int[] colBuckets = Bucketize(Arange(0.0, 1.0 - 1e-6, 1.0 / cols), boundaries);
        var ids = new long[rowBuckets.Length * colBuckets.Length];
        for (int r = 0; r < rowBuckets.Length; r++)
            for (int c = 0; c < colBuckets.Length; c++)
                ids[r * colBuckets.Length + c] = (long)rowBuckets[r] * maxNumPatchesPerSide + colBuckets[c];
        return ids;
    }

    private static (int Rows, int Cols) PatchCounts(int imageHeight, int imageWidth, int patchSize, int maxNumPatchesPerSide)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(patchSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxNumPatchesPerSide);
        int rows = imageHeight / patchSize, cols = imageWidth / patchSize;
        if (rows <= 0 || cols <= 0)
            throw new ArgumentOutOfRangeException(nameof(imageHeight), $"An image of {imageWidth}x{imageHeight} has no whole {patchSize}-pixel patch.");
        return (rows, cols);
    }

    /// <summary>
    /// Values per vector register in torch's CPU arange kernel (AVX2 float: 8), and its loop handles two vectors per
    /// iteration. Inside the vectorised part each vector starts from a float32 base, so values can differ in the last
    /// bit from the scalar formula, which moves a value that ties with a boundary. Torch's result therefore depends on
    /// the CPU kernel it runs (AVX2 here, as in the fixtures); this reproduces the AVX2 one.
    /// </summary>
    private const int TorchArangeVectorWidth = 8;

    // torch.arange(start, end, step) in float32 on the CPU: length ceil((end − start) / step); values in double,
    // rounded to float32; in the vectorised part base = float32(start + step·blockStart), value = float32(base + step·k).
    private static float[] Arange(double start, double end, double step)
    {
        int length = Math.Max(0, (int)Math.Ceiling((end - start) / step));
        int vectorized = length / (2 * TorchArangeVectorWidth) * (2 * TorchArangeVectorWidth);
        var values = new float[length];
        for (int i = 0; i < length; i++)
        {
            if (i < vectorized)
            {
                int blockStart = i / TorchArangeVectorWidth * TorchArangeVectorWidth;
                float blockBase = (float)(start + step * blockStart);
                values[i] = (float)(blockBase + step * (i - blockStart));
            }
            else
            {
                values[i] = (float)(start + step * i);
            }
        }
        return values;
    }

    // torch.bucketize(x, boundaries, right=True): the number of boundaries ≤ x.
    private static int[] Bucketize(float[] values, float[] boundaries)
    {
        var buckets = new int[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            int index = Array.BinarySearch(boundaries, values[i]);
            if (index >= 0)
            {
                while (index + 1 < boundaries.Length && boundaries[index + 1] == values[i]) index++;
                buckets[i] = index + 1;
            }
            else
            {
                buckets[i] = ~index;
            }
        }
        return buckets;
    }
}
