using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Bagel.Data.Images;

/// <summary>
/// Resizes an <see cref="RgbImage"/> with the bicubic filter the way PIL's <c>Image.resize(size, BICUBIC)</c> does
/// (what torchvision's <c>F.resize</c> on a PIL image calls in the reference), aiming at bit-identical uint8 output:
/// a separable convolution, horizontal pass then vertical pass, each skipped when that side keeps its size. When
/// shrinking, the filter's support is widened by the shrink factor (antialiasing). Each pass uses 8-bit inputs,
/// fixed-point weights with <see cref="PrecisionBits"/> fractional bits, rounding, and clamping to [0, 255].
/// Written from the algorithm's description, not from Pillow's source.
/// </summary>
public static class BicubicResampler
{
    /// <summary>Fractional bits of the fixed-point weights: 32 − 8 (pixel) − 2 (headroom), as in PIL's 8-bit path.</summary>
    public const int PrecisionBits = 32 - 8 - 2;

    /// <summary>The bicubic kernel's parameter a = −0.5 (PIL's choice; Keys' cubic convolution).</summary>
    private const double CubicA = -0.5;

    /// <summary>The bicubic kernel's support radius at scale 1.</summary>
    private const double CubicSupport = 2.0;

    /// <summary>Returns a new image of <paramref name="width"/>×<paramref name="height"/> (or the same image when unchanged).</summary>
    public static RgbImage Resize(RgbImage image, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        RgbImage result = image;
        if (width != image.Width) result = ResizeHorizontal(result, width);
        if (height != image.Height) result = ResizeVertical(result, height);
        return result;
    }

    private static RgbImage ResizeHorizontal(RgbImage source, int outWidth)
    {
        var weights = FilterWeights.Compute(source.Width, outWidth);
        int inRow = source.Width * 3, outRow = outWidth * 3;
        var dst = new byte[outRow * source.Height];
        ref byte src = ref MemoryMarshal.GetArrayDataReference(source.Pixels);
        ref byte dstRef = ref MemoryMarshal.GetArrayDataReference(dst);
        ref int values = ref MemoryMarshal.GetArrayDataReference(weights.Values);
        for (int y = 0; y < source.Height; y++)
        {
            ref byte row = ref Unsafe.Add(ref src, y * inRow);
            ref byte outRowRef = ref Unsafe.Add(ref dstRef, y * outRow);
            for (int x = 0; x < outWidth; x++)
            {
                int count = weights.Count[x];
                ref byte pixel = ref Unsafe.Add(ref row, weights.First[x] * 3);
                ref int w = ref Unsafe.Add(ref values, x * weights.Stride);
                int r = Rounding, g = Rounding, b = Rounding;
                for (int i = 0; i < count; i++)
                {
                    int k = Unsafe.Add(ref w, i);
                    ref byte p = ref Unsafe.Add(ref pixel, i * 3);
                    r += p * k;
                    g += Unsafe.Add(ref p, 1) * k;
                    b += Unsafe.Add(ref p, 2) * k;
                }
                ref byte o = ref Unsafe.Add(ref outRowRef, x * 3);
                o = Clip8(r);
                Unsafe.Add(ref o, 1) = Clip8(g);
                Unsafe.Add(ref o, 2) = Clip8(b);
            }
        }
        return new RgbImage(outWidth, source.Height, dst);
    }

    private static RgbImage ResizeVertical(RgbImage source, int outHeight)
    {
        var weights = FilterWeights.Compute(source.Height, outHeight);
        int row = source.Width * 3;
        byte[] src = source.Pixels;
        var dst = new byte[row * outHeight];
        for (int y = 0; y < outHeight; y++)
        {
            int first = weights.First[y], count = weights.Count[y];
            ReadOnlySpan<int> taps = weights.Values.AsSpan(y * weights.Stride, count);
            int c = Vector256.IsHardwareAccelerated ? VerticalVectorized(src, dst, row, first, taps, y * row) : 0;
            for (; c < row; c++)
            {
                int acc = Rounding;
                for (int i = 0; i < taps.Length; i++) acc += src[(first + i) * row + c] * taps[i];
                dst[y * row + c] = Clip8(acc);
            }
        }
        return new RgbImage(source.Width, outHeight, dst);
    }

    // 32 bytes of a row at a time: widen to four int32 vectors, accumulate the taps, shift, clamp, narrow back.
    // Same integer arithmetic as the scalar loop, so the result is identical. Returns the first byte not done.
    private static int VerticalVectorized(byte[] src, byte[] dst, int row, int first, ReadOnlySpan<int> taps, int dstOffset)
    {
        var rounding = Vector256.Create(Rounding);
        var max = Vector256.Create(255);
        int c = 0;
        for (; c + Vector256<byte>.Count <= row; c += Vector256<byte>.Count)
        {
            Vector256<int> a0 = rounding, a1 = rounding, a2 = rounding, a3 = rounding;
            for (int i = 0; i < taps.Length; i++)
            {
                var bytes = Vector256.Create<byte>(src.AsSpan((first + i) * row + c, Vector256<byte>.Count));
                var weight = Vector256.Create(taps[i]);
                (Vector256<ushort> lo, Vector256<ushort> hi) = Vector256.Widen(bytes);
                (Vector256<uint> w0, Vector256<uint> w1) = Vector256.Widen(lo);
                (Vector256<uint> w2, Vector256<uint> w3) = Vector256.Widen(hi);
                a0 += w0.AsInt32() * weight;
                a1 += w1.AsInt32() * weight;
                a2 += w2.AsInt32() * weight;
                a3 += w3.AsInt32() * weight;
            }
            var s0 = Vector256.Clamp(Vector256.ShiftRightArithmetic(a0, PrecisionBits), Vector256<int>.Zero, max);
            var s1 = Vector256.Clamp(Vector256.ShiftRightArithmetic(a1, PrecisionBits), Vector256<int>.Zero, max);
            var s2 = Vector256.Clamp(Vector256.ShiftRightArithmetic(a2, PrecisionBits), Vector256<int>.Zero, max);
            var s3 = Vector256.Clamp(Vector256.ShiftRightArithmetic(a3, PrecisionBits), Vector256<int>.Zero, max);
            var narrowed = Vector256.Narrow(Vector256.Narrow(s0, s1).AsUInt16(), Vector256.Narrow(s2, s3).AsUInt16());
            narrowed.CopyTo(dst.AsSpan(dstOffset + c, Vector256<byte>.Count));
        }
        return c;
    }

    /// <summary>Half of one output unit, so the final shift rounds to nearest.</summary>
    private const int Rounding = 1 << (PrecisionBits - 1);

    private static byte Clip8(int value)
    {
        int v = value >> PrecisionBits;
        return v < 0 ? (byte)0 : v > 255 ? (byte)255 : (byte)v;
    }

    private static double Cubic(double x)
    {
        x = Math.Abs(x);
        if (x < 1.0) return ((CubicA + 2.0) * x - (CubicA + 3.0)) * x * x + 1.0;
        if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * CubicA;
        return 0.0;
    }

    /// <summary>For each output index: the first input index, how many inputs, and their fixed-point weights.</summary>
    private sealed class FilterWeights
    {
        public required int[] First { get; init; }
        public required int[] Count { get; init; }
        public required int[] Values { get; init; }
        public required int Stride { get; init; }

        public static FilterWeights Compute(int inSize, int outSize)
        {
            double scale = (double)inSize / outSize;
            double filterScale = Math.Max(scale, 1.0);       // widen the kernel only when shrinking
            double support = CubicSupport * filterScale;
            double inverseFilterScale = 1.0 / filterScale;    // multiplied, not divided, for bit-parity of the weights
            int stride = (int)Math.Ceiling(support) * 2 + 1;
            var first = new int[outSize];
            var count = new int[outSize];
            var values = new int[outSize * stride];
            var weights = new double[stride];
            for (int o = 0; o < outSize; o++)
            {
                double center = (o + 0.5) * scale;            // the output pixel's centre in input coordinates
                int lo = Math.Max((int)(center - support + 0.5), 0);
                int hi = Math.Min((int)(center + support + 0.5), inSize);
                int n = hi - lo;
                double total = 0.0;
                for (int i = 0; i < n; i++)
                {
                    double w = Cubic((i + lo - center + 0.5) * inverseFilterScale);
                    weights[i] = w;
                    total += w;
                }
                for (int i = 0; i < n; i++)
                {
                    double w = total != 0.0 ? weights[i] / total : weights[i];
                    // Round half away from zero into fixed point.
                    values[o * stride + i] = w < 0 ? (int)(-0.5 + w * (1 << PrecisionBits)) : (int)(0.5 + w * (1 << PrecisionBits));
                }
                first[o] = lo;
                count[o] = n;
            }
            return new FilterWeights { First = first, Count = count, Values = values, Stride = stride };
        }
    }
}
