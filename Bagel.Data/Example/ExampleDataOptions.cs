using Bagel.Data.Config;

namespace Bagel.Data.Example;

/// <summary>How generated pictures are encoded.</summary>
public enum ExampleImageFormat
{
    /// <summary>Lossless PNG (the maintainer's editing writer stores PNG bytes).</summary>
    Png,

    /// <summary>JPEG at <see cref="ExampleDataOptions.JpegQuality"/>.</summary>
    Jpeg,
}

/// <summary>
/// What <see cref="ExampleDataWriter"/> writes. The defaults make a tiny dataset in the reference's <c>bagel_example</c>
/// layout that a CPU training run and the unit tests get through in seconds; <see cref="Large"/> makes one shaped like
/// the reference's (10 files × 100 rows per parquet kind, 1000 VLM lines) with 1024×1024 JPEGs, for data benchmarks.
/// Every value is checked by <see cref="Validate"/>, which reports all bad values at once.
/// </summary>
public sealed record ExampleDataOptions
{
    /// <summary>The folder to create (required). It must not exist unless <see cref="Overwrite"/> is set.</summary>
    public required string OutputFolder { get; init; }

    /// <summary>Seeds every picture, caption and instruction (default 42, the reference's <c>data_seed</c>). The same
    /// seed and options give byte-identical files.</summary>
    public int Seed { get; init; } = 42;

    /// <summary>Replace an existing <see cref="OutputFolder"/> (default false: an existing folder is an error).</summary>
    public bool Overwrite { get; init; }

    /// <summary>T2I parquet files <c>t2i/chunk_&lt;k&gt;.parquet</c> (default 3).</summary>
    public int T2IFiles { get; init; } = 3;

    /// <summary>Rows per T2I file (default 8).</summary>
    public int T2IRowsPerFile { get; init; } = 8;

    /// <summary>Rows per row group of the T2I files (default 4).</summary>
    public int T2IRowsPerRowGroup { get; init; } = 4;

    /// <summary>Editing parquet files <c>editing/seedxedit_multi/chunk_&lt;k&gt;.parquet</c> (default 2).</summary>
    public int EditFiles { get; init; } = 2;

    /// <summary>Rows per editing file (default 10).</summary>
    public int EditRowsPerFile { get; init; } = 10;

    /// <summary>Rows per row group of the editing files (default 10, as the maintainer's writer; issue #55).</summary>
    public int EditRowsPerRowGroup { get; init; } = 10;

    /// <summary>Longest edit chain in images (default 3; every chain has 2 to this many images).</summary>
    public int EditMaxChainLength { get; init; } = 3;

    /// <summary>VLM conversations in <c>vlm/llava_ov_si.jsonl</c>, one picture each (default 24).</summary>
    public int VlmLines { get; init; } = 24;

    /// <summary>Smallest picture side in pixels (default 32). Each picture's width and height are drawn from
    /// [<see cref="MinImageSide"/>, <see cref="MaxImageSide"/>]; set both equal for a fixed size.</summary>
    public int MinImageSide { get; init; } = 32;

    /// <summary>Largest picture side in pixels (default 96).</summary>
    public int MaxImageSide { get; init; } = 96;

    /// <summary>Encoding of the T2I pictures (default PNG).</summary>
    public ExampleImageFormat T2IImageFormat { get; init; } = ExampleImageFormat.Png;

    /// <summary>Encoding of the editing pictures (default PNG, as the maintainer's writer).</summary>
    public ExampleImageFormat EditImageFormat { get; init; } = ExampleImageFormat.Png;

    /// <summary>Encoding of the VLM picture files (default JPEG, like LLaVA's photos).</summary>
    public ExampleImageFormat VlmImageFormat { get; init; } = ExampleImageFormat.Jpeg;

    /// <summary>JPEG quality 1..100 (default 90).</summary>
    public int JpegQuality { get; init; } = 90;

    /// <summary>Per-pixel noise amplitude 0..64 added to every channel (default 0: flat colours). Noise makes JPEG
    /// sizes and decode times closer to photographs', which a data benchmark wants.</summary>
    public int NoiseAmplitude { get; init; }

    /// <summary>Pictures rendered and encoded at once (default: the processor count). The output does not depend on it.</summary>
    public int MaxDegreeOfParallelism { get; init; } = Environment.ProcessorCount;

    /// <summary>The mix YAML's VAE-stream transform (T2I and edit <c>image_transform_args</c>; default stride 16,
    /// max 64, min 32: tiny, for CPU training).</summary>
    public ExampleTransformSizes VaeTransform { get; init; } = new(16, 64, 32);

    /// <summary>The mix YAML's ViT-stream transform (edit <c>vit_image_transform_args</c> and VLM
    /// <c>image_transform_args</c>; default stride 14, max 56, min 28).</summary>
    public ExampleTransformSizes VitTransform { get; init; } = new(14, 56, 28);

    /// <summary>
    /// A dataset shaped like the reference's <c>bagel_example</c> (10 T2I files × 100 rows in row groups of 10,
    /// 10 editing files × 100 rows, 1000 VLM lines), every picture a 1024×1024 JPEG with noise, and the reference's
    /// transform sizes (VAE 16/1024/512, ViT 14/518/224 — the VLM block keeps the same ViT sizes).
    /// </summary>
    /// <param name="outputFolder">The folder to create.</param>
    /// <returns>The options.</returns>
    public static ExampleDataOptions Large(string outputFolder) => new()
    {
        OutputFolder = outputFolder,
        T2IFiles = 10,
        T2IRowsPerFile = 100,
        T2IRowsPerRowGroup = 10,
        EditFiles = 10,
        EditRowsPerFile = 100,
        EditRowsPerRowGroup = 10,
        VlmLines = 1000,
        MinImageSide = 1024,
        MaxImageSide = 1024,
        T2IImageFormat = ExampleImageFormat.Jpeg,
        EditImageFormat = ExampleImageFormat.Jpeg,
        VlmImageFormat = ExampleImageFormat.Jpeg,
        NoiseAmplitude = 12,
        VaeTransform = new(16, 1024, 512),
        VitTransform = new(14, 518, 224),
    };

    /// <summary>Checks every value.</summary>
    /// <exception cref="DataConfigException">One bad value, naming the option.</exception>
    /// <exception cref="DataConfigAggregateException">Several bad values.</exception>
    public void Validate()
    {
        var errors = new List<DataConfigException>();
        void Check(bool ok, string key, string message)
        {
            if (!ok) errors.Add(new DataConfigException(null, $"{nameof(ExampleDataOptions)}.{key}", message));
        }
        Check(!string.IsNullOrWhiteSpace(OutputFolder), nameof(OutputFolder), "give the folder to write.");
        Check(T2IFiles >= 1, nameof(T2IFiles), $"must be 1 or more, found {T2IFiles}.");
        Check(T2IRowsPerFile >= 1, nameof(T2IRowsPerFile), $"must be 1 or more, found {T2IRowsPerFile}.");
        Check(T2IRowsPerRowGroup >= 1, nameof(T2IRowsPerRowGroup), $"must be 1 or more, found {T2IRowsPerRowGroup}.");
        Check(EditFiles >= 1, nameof(EditFiles), $"must be 1 or more, found {EditFiles}.");
        Check(EditRowsPerFile >= 1, nameof(EditRowsPerFile), $"must be 1 or more, found {EditRowsPerFile}.");
        Check(EditRowsPerRowGroup >= 1, nameof(EditRowsPerRowGroup), $"must be 1 or more, found {EditRowsPerRowGroup}.");
        Check(EditMaxChainLength >= 2, nameof(EditMaxChainLength), $"an edit chain needs at least 2 images, found {EditMaxChainLength}.");
        Check(VlmLines >= 1, nameof(VlmLines), $"must be 1 or more, found {VlmLines}.");
        Check(MinImageSide >= ExampleSceneRenderer.MinSide, nameof(MinImageSide), $"must be {ExampleSceneRenderer.MinSide} or more so a shape is visible, found {MinImageSide}.");
        Check(MaxImageSide >= MinImageSide, nameof(MaxImageSide), $"must be at least MinImageSide ({MinImageSide}), found {MaxImageSide}.");
        Check(MaxImageSide <= ExampleSceneRenderer.MaxSide, nameof(MaxImageSide), $"must be {ExampleSceneRenderer.MaxSide} or less, found {MaxImageSide}.");
        Check(JpegQuality is >= 1 and <= 100, nameof(JpegQuality), $"must be 1..100, found {JpegQuality}.");
        Check(NoiseAmplitude is >= 0 and <= 64, nameof(NoiseAmplitude), $"must be 0..64, found {NoiseAmplitude}.");
        Check(MaxDegreeOfParallelism >= 1, nameof(MaxDegreeOfParallelism), $"must be 1 or more, found {MaxDegreeOfParallelism}.");
        foreach (var (name, t) in new[] { (nameof(VaeTransform), VaeTransform), (nameof(VitTransform), VitTransform) })
        {
            Check(t is not null, name, "is required.");
            if (t is null) continue;
            Check(t.ImageStride >= 1 && t.MinImageSize >= 1 && t.MaxImageSize >= 1, name, $"stride, max and min must be 1 or more, found {t}.");
        }
        if (errors.Count == 1) throw errors[0];
        if (errors.Count > 1) throw new DataConfigAggregateException(errors);
    }
}

/// <summary>One <c>image_transform_args</c> block of the generated mix YAML.</summary>
/// <param name="ImageStride"><c>image_stride</c>: 16 for the VAE stream, 14 for the ViT stream.</param>
/// <param name="MaxImageSize"><c>max_image_size</c>.</param>
/// <param name="MinImageSize"><c>min_image_size</c>.</param>
public sealed record ExampleTransformSizes(int ImageStride, int MaxImageSize, int MinImageSize);
