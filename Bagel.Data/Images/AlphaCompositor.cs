namespace Bagel.Data.Images;

/// <summary>RGBA to RGB as <c>pil_img2rgb</c> does it: paste onto a white image with the alpha as the mask.</summary>
internal static class AlphaCompositor
{
    /// <summary>The background <c>pil_img2rgb</c> pastes onto: <c>Image.new("RGB", size, (255, 255, 255))</c>.</summary>
    private const int White = 255;

    /// <summary>Drops or composites the alpha of unpremultiplied RGBA bytes into new RGB bytes.</summary>
    public static byte[] ToRgb(byte[] rgba, bool compositeOntoWhite)
    {
        int pixels = rgba.Length / 4;
        var rgb = new byte[pixels * 3];
        for (int i = 0, s = 0, d = 0; i < pixels; i++, s += 4, d += 3)
        {
            int alpha = rgba[s + 3];
            if (!compositeOntoWhite || alpha == 255)
            {
                rgb[d] = rgba[s];
                rgb[d + 1] = rgba[s + 1];
                rgb[d + 2] = rgba[s + 2];
            }
            else
            {
                rgb[d] = Blend(White, rgba[s], alpha);
                rgb[d + 1] = Blend(White, rgba[s + 1], alpha);
                rgb[d + 2] = Blend(White, rgba[s + 2], alpha);
            }
        }
        return rgb;
    }

    /// <summary>PIL's paste blend: <c>(background·(255−a) + foreground·a) / 255</c>, divided with rounding.</summary>
    internal static byte Blend(int background, int foreground, int alpha)
    {
        int v = background * (255 - alpha) + foreground * alpha + 128;
        return (byte)((v + (v >> 8)) >> 8);
    }
}
