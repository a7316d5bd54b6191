using Bagel.Tests.Infrastructure;
using Bagel.Tests.Training.Metrics;
using Bagel.Training.Metrics;
using Bagel.Training.ValidationImages;
using Microsoft.Extensions.Logging.Abstractions;
using SkiaSharp;
using TorchSharp;

namespace Bagel.Tests.Training.ValidationImages;

/// <summary>The validation grid: images placed exactly, captions drawn under them, a PNG a real decoder reads; and its
/// TensorBoard image summary.</summary>
public sealed class ValidationImageGridTests
{
    private static torch.Tensor Solid(int height, int width, byte r, byte g, byte b)
    {
        using torch.Tensor colour = torch.tensor(new byte[] { r, g, b });
        return colour.view(1, 1, 3).expand(height, width, 3).contiguous();
    }

    [Fact]
    public void FiveImagesMakeTwoRowsThatDecodeWithTheImagesInPlaceAndTheirCaptionsUnderThem()
    {
        torch.Tensor[] images = [.. Enumerable.Range(0, 5).Select(i => Solid(64, 64, (byte)(40 * i), 200, (byte)(255 - 40 * i)))];
        (byte[] png, int height, int width) = ValidationImageGrid.Encode([.. images.Select((x, i) => new ValidationGridCell(x, $"prompt number {i}"))]);

        using SKBitmap decoded = SKBitmap.Decode(png);
        Assert.NotNull(decoded);
        Assert.Equal((width, height), (decoded.Width, decoded.Height));
        Assert.Equal(4 * 128 + 5 * 4, width); // at most 4 columns, cells at least 128 px wide for the captions
        int captionHeight = ValidationImageGrid.CaptionLines * 9 + 4;
        Assert.Equal(2 * (64 + captionHeight) + 3 * 4, height);
        for (int i = 0; i < 5; i++)
        {
            int cellX = 4 + i % 4 * (128 + 4), cellY = 4 + i / 4 * (64 + captionHeight + 4);
            int imageX = cellX + (128 - 64) / 2;
            // Every pixel of the image is where it belongs.
            foreach ((int x, int y) in new[] { (0, 0), (63, 0), (0, 63), (63, 63), (31, 17) })
                Assert.Equal(new SKColor((byte)(40 * i), 200, (byte)(255 - 40 * i)), decoded.GetPixel(imageX + x, cellY + y));
            // The caption is drawn in black under it, on white.
            int dark = 0;
            for (int y = cellY + 64; y < cellY + 64 + captionHeight; y++)
                for (int x = cellX; x < cellX + 128; x++)
                    if (decoded.GetPixel(x, y) == SKColors.Black) dark++;
            Assert.True(dark > 50, $"cell {i}: only {dark} caption pixels");
            Assert.Equal(SKColors.White, decoded.GetPixel(cellX + 1, cellY + 1)); // margin beside the 64-px image
        }
        foreach (torch.Tensor image in images) image.Dispose();
    }

    [Fact]
    public void CaptionsWrapAtWordsCutLongWordsAndEndInAnEllipsisWhenTooLong()
    {
        Assert.Equal(["a red", "fox in", "snow"], ValidationImageGrid.Wrap("a red fox in snow", 6, 4));
        Assert.Equal(["abcdef", "ghij"], ValidationImageGrid.Wrap("abcdefghij", 6, 4));
        Assert.Equal(["one", "two..."], ValidationImageGrid.Wrap("one two three four", 6, 2));
        Assert.Equal(["abc..."], ValidationImageGrid.Wrap("abcdef ghi", 6, 1));
    }

    [Fact]
    public void AnEditsInputSitsBesideItsOutputSmallerImagesAreCentredAndALongAnswerGetsMoreLines()
    {
        using torch.Tensor t2i = Solid(32, 32, 255, 0, 0), input = Solid(32, 48, 0, 255, 0), output = Solid(32, 48, 0, 0, 255), picture = Solid(28, 28, 9, 9, 9);
        string answer = string.Join(' ', Enumerable.Repeat("blue", 50));
        (byte[] png, int height, int width) = ValidationImageGrid.Encode([new(t2i, "solid red"), new(output, "edit: make it blue", input),
            new(picture, $"Q: what colour? A: {answer}")]);

        using SKBitmap decoded = SKBitmap.Decode(png);
        int cell = ValidationImageGrid.MinCellWidth; // the widest content, the edit pair (48 + 4 + 48 px), is narrower
        Assert.Equal(3 * cell + 4 * 4, width);
        // 21 characters a line at 128 px: the answer needs more than the standard 4 lines and is cut at the maximum.
        Assert.Equal(32 + ValidationImageGrid.MaxCaptionLines * 9 + 4 + 2 * 4, height);
        Assert.Equal((width, height), (decoded.Width, decoded.Height));
        int pairX = 4 + cell + 4 + (cell - 100) / 2;
        Assert.Equal(new SKColor(0, 255, 0), decoded.GetPixel(pairX, 4));
        Assert.Equal(new SKColor(0, 255, 0), decoded.GetPixel(pairX + 47, 4 + 31));
        Assert.Equal(SKColors.White, decoded.GetPixel(pairX + 49, 4 + 10)); // the gap between input and output
        Assert.Equal(new SKColor(0, 0, 255), decoded.GetPixel(pairX + 52, 4));
        Assert.Equal(new SKColor(0, 0, 255), decoded.GetPixel(pairX + 99, 4 + 31));
        // The 28-px picture is centred in the 32-px image row: 2 px of margin above it.
        int pictureX = 4 + 2 * (cell + 4) + (cell - 28) / 2;
        Assert.Equal(SKColors.White, decoded.GetPixel(pictureX, 4 + 1));
        Assert.Equal(new SKColor(9, 9, 9), decoded.GetPixel(pictureX, 4 + 2));
        Assert.Equal(new SKColor(9, 9, 9), decoded.GetPixel(pictureX + 27, 4 + 29));
    }

    [Fact]
    public void ImagesThatAreNotUint8RgbAreRefused()
    {
        using torch.Tensor floats = torch.zeros(16, 16, 3), ok = Solid(16, 16, 1, 2, 3), grey = torch.zeros(16, 16, 1, torch.ScalarType.Byte);
        Assert.Contains("uint8", Assert.Throws<ArgumentException>(() => ValidationImageGrid.Encode([new(floats, "f")])).Message, StringComparison.Ordinal);
        Assert.Contains("[16, 16, 1]", Assert.Throws<ArgumentException>(() => ValidationImageGrid.Encode([new(ok, "edit", grey)])).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => ValidationImageGrid.Encode([]));
    }

    [Fact]
    public async Task TheTensorBoardSinkWritesImageSummariesBesideTheScalarsAndAResumeDropsTheLaterOnes()
    {
        using var dir = new TempDirectory("bagel-tb-images-");
        using torch.Tensor pixels = Solid(8, 8, 10, 20, 30);
        (byte[] png, int height, int width) = ValidationImageGrid.Encode([new(pixels, "x")]);
        var time = new DateTimeOffset(2026, 1, 2, 3, 4, 5, 500, TimeSpan.Zero);
        await using (var sink = new TensorBoardMetricSink(dir.Path))
        {
            await sink.WriteAsync(new Bagel.Core.Metrics.StepMetrics(1, time, new Dictionary<string, double> { ["loss"] = 0.5 }), TestContext.Current.CancellationToken);
            await sink.WriteImageAsync(new StepImage("val/images", 2, time, png, height, width), TestContext.Current.CancellationToken);
            await sink.WriteImageAsync(new StepImage("val/images", 4, time, png, height, width), TestContext.Current.CancellationToken);
            List<TfRecordEventReader.Event> events = TfRecordEventReader.Read(sink.EventFile!);
            Assert.Equal("brain.Event:2", events[0].FileVersion);
            Assert.Equal([1L, 2, 4], events.Skip(1).Select(e => e.Step));
            TfRecordEventReader.ScalarValue image = Assert.Single(events[2].Values);
            Assert.Equal(new TfRecordEventReader.ImageValue(height, width, 3, png) with { Encoded = image.Image!.Encoded }, image.Image);
            Assert.Equal(png, image.Image.Encoded);
            Assert.Equal(time.ToUnixTimeMilliseconds() / 1000.0, events[2].WallTime);
        }

        await using var resumed = new TensorBoardMetricSink(dir.Path, NullLogger.Instance);
        await resumed.DiscardFromStepAsync(3, TestContext.Current.CancellationToken);
        string first = Directory.GetFiles(dir.Path).Single(f => f != resumed.EventFile);
        Assert.Equal([0L, 1, 2], TfRecordEventReader.Read(first).Select(e => e.Step));
    }
}
