namespace Bagel.Data.Images;

/// <summary>Turns an image upright according to its EXIF orientation tag (1–8), as <c>ImageOps.exif_transpose</c> does.</summary>
internal static class ExifOrientation
{
    /// <summary>Returns <paramref name="image"/> itself for orientation 1 or an unknown value, else a new upright image.</summary>
    public static RgbImage Apply(RgbImage image, int orientation)
    {
        if (orientation is < 2 or > 8) return image;
        int w = image.Width, h = image.Height;
        bool swaps = orientation >= 5;
        int outW = swaps ? h : w, outH = swaps ? w : h;
        byte[] src = image.Pixels;
        var dst = new byte[src.Length];
        for (int oy = 0; oy < outH; oy++)
        {
            for (int ox = 0; ox < outW; ox++)
            {
                (int sx, int sy) = orientation switch
                {
                    2 => (w - 1 - ox, oy),          // mirror left-right
                    3 => (w - 1 - ox, h - 1 - oy),  // rotate 180
                    4 => (ox, h - 1 - oy),          // mirror top-bottom
                    5 => (oy, ox),                  // transpose
                    6 => (oy, h - 1 - ox),          // rotate 90 clockwise
                    7 => (w - 1 - oy, h - 1 - ox),  // transverse
                    _ => (w - 1 - oy, ox),          // 8: rotate 90 counter-clockwise
                };
                int s = (sy * w + sx) * 3, d = (oy * outW + ox) * 3;
                dst[d] = src[s];
                dst[d + 1] = src[s + 1];
                dst[d + 2] = src[s + 2];
            }
        }
        return new RgbImage(outW, outH, dst);
    }
}
