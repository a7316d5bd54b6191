using Bagel.Data.Diagnostics;
using Bagel.Data.Example;
using Bagel.Data.Images;
using Bagel.Data.Pipeline;
using Bagel.Data.Samples;
using Bagel.Data.Sources;
using Bagel.Data.Tokenization;
using Bagel.Tests.Data.Sources;
using Bagel.Tests.Infrastructure;
using Parquet;
using Parquet.Serialization;
using SkiaSharp;

namespace Bagel.Tests.Data.Pipeline;

/// <summary>Tiny real datasets (PNG bytes in parquet, JSONL with image files) and the pipeline parts over them.</summary>
internal sealed class PipelineFixture : IDisposable
{
    public static readonly ImageTransformOptions Vae = new() { ImageStride = 16, MaxImageSize = 64, MinImageSize = 32 };
    public static readonly ImageTransformOptions Vit = new() { ImageStride = 14, MaxImageSize = 56, MinImageSize = 28 };

    // By default the project's own byte-level BPE (trained on the example data's texts), so these tests need no external data.
    private static readonly Lazy<BagelTokenizerSetup> Trained = new(() =>
        BagelSpecialTokens.Apply(ByteLevelBpeTrainer.Train(new ExampleDataWriter(new ExampleDataOptions { OutputFolder = "unused" }).EnumerateTexts())));

    private static readonly Lazy<BagelTokenizerSetup> Qwen25 = new(() =>
        BagelSpecialTokens.Apply(Qwen2Tokenizer.FromFolder(SharedData.Require("tokenizer/qwen2.5"))));

    private readonly Lazy<BagelTokenizerSetup> _setup;

    /// <summary>The datasets over the trained tokenizer, or with <paramref name="qwen25"/> over the shared Qwen2.5 files (the test skips without them).</summary>
    public PipelineFixture(bool qwen25 = false)
    {
        _setup = qwen25 ? Qwen25 : Trained;
        _ = _setup.Value;
    }

    public TempDirectory Directory { get; } = new("bagel-pipeline-");

    public BagelTokenizerSetup Tokenizer => _setup.Value;

    public static byte[] Png(int width, int height, int seed)
    {
        var random = new Random(seed);
        using var bitmap = new SKBitmap(width, height, SKColorType.Rgba8888, SKAlphaType.Premul);
        var color = new SKColor((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256));
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(color);
            using var paint = new SKPaint { Color = new SKColor((byte)random.Next(256), 40, 200) };
            canvas.DrawCircle(random.Next(width), random.Next(height), Math.Max(4, width / 4), paint);
        }
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    public async Task<string> WriteT2IAsync(int files, int rows, int rowGroupSize, Func<int, (byte[]? Image, string? Captions)>? row = null)
    {
        string dir = Directory.Folder("t2i");
        int id = 0;
        for (int f = 0; f < files; f++)
        {
            var data = new List<T2IParquetSourceTests.T2IRow>();
            for (int r = 0; r < rows; r++, id++)
            {
                var (image, captions) = row?.Invoke(id) ?? (Png(32 + 16 * (id % 4), 32 + 16 * (id % 3), id), $"{{\"short\": \"a shape number {id}\", \"long\": \"picture {id} with a circle\"}}");
                data.Add(new T2IParquetSourceTests.T2IRow { image = image, captions = captions, extra = id });
            }
            await ParquetSerializer.SerializeAsync(data, Path.Combine(dir, $"chunk_{f}.parquet"), new ParquetOptions { RowGroupSize = rowGroupSize });
        }
        return dir;
    }

    public async Task<string> WriteEditAsync(int files, int rows, int rowGroupSize)
    {
        string dir = Directory.Folder("edit");
        int id = 0;
        for (int f = 0; f < files; f++)
        {
            var data = new List<EditParquetSourceTests.EditRow>();
            for (int r = 0; r < rows; r++, id++)
            {
                int n = 2 + id % 3;
                data.Add(new EditParquetSourceTests.EditRow
                {
                    image_list = [.. Enumerable.Range(0, n).Select(i => Png(32 + 16 * ((id + i) % 2), 48, id * 10 + i))],
                    instruction_list = [.. Enumerable.Range(0, n - 1).Select(i => new List<string> { $"move the circle {i}", $"shift shape {i} of {id}" })],
                });
            }
            await ParquetSerializer.SerializeAsync(data, Path.Combine(dir, $"chunk_{f}.parquet"), new ParquetOptions { RowGroupSize = rowGroupSize });
        }
        return dir;
    }

    public (string Jsonl, string Images) WriteVlm(int lines, Func<int, string>? line = null)
    {
        string images = Directory.Folder("vlm/images");
        var text = new List<string>();
        for (int i = 0; i < lines; i++)
        {
            File.WriteAllBytes(Path.Combine(images, $"{i}.png"), Png(40 + 8 * (i % 3), 40, 1000 + i));
            text.Add(line?.Invoke(i) ?? $"{{\"id\": {i}, \"image\": \"{i}.png\", \"conversations\": [{{\"from\": \"human\", \"value\": \"<image>\\nWhat is shown in picture {i}?\"}}, {{\"from\": \"gpt\", \"value\": \"A circle, number {i}.\"}}]}}");
        }
        string jsonl = Path.Combine(Directory.Path, "vlm", "conv.jsonl");
        File.WriteAllLines(jsonl, text);
        return (jsonl, images);
    }

    public SampleBuilder Builder(DataSkipCounters skips, ImageTransformOptions main, ImageTransformOptions? vit = null) =>
        new(Tokenizer.Tokenizer, new ImageDecoder(), new ImageTransform(main), vit is null ? null : new ImageTransform(vit), skips);

    public DataPipeline Pipeline(IReadOnlyList<DataGroup> groups, DataPipelineOptions options, DataSkipCounters skips) =>
        new(groups, Tokenizer.SpecialTokenIds, options, skips);

    public void Dispose() => Directory.Dispose();
}
