using Bagel.Core.Randomness;
using Bagel.Data.Images;
using Bagel.Models.Generation;
using Bagel.Training.Checkpoints;
using SkiaSharp;
using static TorchSharp.torch;

namespace Bagel.Training.Inference;

/// <summary>An image the pipeline made, with the think mode's plan.</summary>
/// <param name="Image">The RGB image.</param>
/// <param name="Thinking">The reasoning text written before the image (think mode), or null.</param>
public sealed record PipelineImage(RgbImage Image, string? Thinking);

public sealed partial class BagelPipeline
{
    /// <summary>Text-to-image (the reference's <c>inferencer(text=prompt)</c>).</summary>
    /// <param name="prompt">The prompt.</param>
    /// <param name="options">Sampling settings; Height and Width must be multiples of <see cref="SizeMultiple"/>
    /// and at most <see cref="MaxImageSide"/>.</param>
    /// <param name="seed">Seeds every draw (the think mode's sampling, then the initial noise): same seed, same image.</param>
    /// <param name="think">Write a plan first (the inferencer's <c>think=True</c>).</param>
    /// <param name="thinkOptions">Decoding of the plan.</param>
    /// <param name="cancellationToken">Checked between steps.</param>
    /// <returns>The image.</returns>
    /// <exception cref="ArgumentException">The size does not fit the model (the message names the value).</exception>
    public PipelineImage TextToImage(string prompt, ImageGenerationOptions options, ulong seed, bool think = false,
        TextGenerationOptions? thinkOptions = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(options);
        CheckSize(options.Height, options.Width);
        using GeneratedImage result = Generator.GenerateImage([new InterleaveInput.Text(Encode(prompt))], options,
            new SeededRandomSource(seed), think, thinkOptions, null, cancellationToken);
        return new PipelineImage(ToRgb(result.Image), result.Thinking);
    }

    /// <summary>Image editing (the reference's <c>inferencer(image=…, text=instruction)</c>): the image is resized by
    /// the VAE transform, enters the context as VAE and ViT tokens, and the output has its (resized) size.</summary>
    /// <param name="image">The input image.</param>
    /// <param name="instruction">The instruction.</param>
    /// <param name="options">Sampling settings (the size is the input's).</param>
    /// <param name="seed">Seeds every draw (the VAE posterior, the plan, the initial noise).</param>
    /// <param name="think">Write a plan first.</param>
    /// <param name="thinkOptions">Decoding of the plan.</param>
    /// <param name="cancellationToken">Checked between steps.</param>
    /// <returns>The edited image.</returns>
    public PipelineImage Edit(RgbImage image, string instruction, ImageGenerationOptions options, ulong seed, bool think = false,
        TextGenerationOptions? thinkOptions = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(instruction);
        ArgumentNullException.ThrowIfNull(options);
        using var scope = NewDisposeScope();
        ContextImage pixels = PrepareImage(image, vae: true);
        using GeneratedImage result = Generator.GenerateImage(
            [new InterleaveInput.Image(pixels), new InterleaveInput.Text(Encode(instruction))], options,
            new SeededRandomSource(seed), think, thinkOptions, null, cancellationToken);
        return new PipelineImage(ToRgb(result.Image), result.Thinking);
    }

    /// <summary>Answers a question about images (the reference's <c>inferencer(image=…, text=question,
    /// understanding_output=True)</c>): the images enter through the ViT only, then the answer is decoded.</summary>
    /// <param name="images">The images (usually one).</param>
    /// <param name="question">The question.</param>
    /// <param name="options">Decoding settings.</param>
    /// <param name="seed">Seeds the sampling draws (unused when greedy).</param>
    /// <param name="think">Reason first (the understanding think prompt).</param>
    /// <param name="cancellationToken">Checked between tokens.</param>
    /// <returns>The answer text (the reference's cut between the first bos and eos markers).</returns>
    /// <exception cref="InvalidOperationException">The model has no understanding branch.</exception>
    public string Ask(IReadOnlyList<RgbImage> images, string question, TextGenerationOptions options, ulong seed = 0, bool think = false,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(question);
        if (VitTransform is null) throw new InvalidOperationException("This model has no understanding branch (visual_und), so it cannot read images.");
        using var scope = NewDisposeScope();
        var inputs = new List<InterleaveInput>();
        foreach (RgbImage image in images) inputs.Add(new InterleaveInput.Image(PrepareImage(image, vae: false)));
        inputs.Add(new InterleaveInput.Text(Encode(question)));
        IReadOnlyList<int> ids = Generator.Understand(inputs, options, new SeededRandomSource(seed), think, null, cancellationToken);
        return Generator.DecodeAnswer(ids);
    }

    /// <summary>The two transformed tensors of an input image, as the inferencer makes them: the VAE transform's
    /// resize first, then each stream's transform of the resized picture.</summary>
    /// <param name="image">The image.</param>
    /// <param name="vae">Make the VAE tensor too (editing); false for answering.</param>
    /// <returns>The tensors (in the current dispose scope).</returns>
    public ContextImage PrepareImage(RgbImage image, bool vae)
    {
        ArgumentNullException.ThrowIfNull(image);
        return InputTransforms.Prepare(image, vae);
    }

    /// <summary>Checks that the model can generate an image of this size.</summary>
    /// <param name="height">Height in pixels.</param>
    /// <param name="width">Width in pixels.</param>
    /// <exception cref="ArgumentException">Not a positive multiple of <see cref="SizeMultiple"/> up to <see cref="MaxImageSide"/>.</exception>
    public void CheckSize(int height, int width)
    {
        int m = SizeMultiple, max = MaxImageSide;
        foreach ((string name, int value) in new[] { ("height", height), ("width", width) })
            if (value <= 0 || value % m != 0 || value > max)
                throw new ArgumentException($"Image {name} {value} px: this model makes sides that are multiples of {m} px up to {max} px (max_latent_size {Model.Config.MaxLatentSize}).");
    }

    /// <summary>Writes <paramref name="image"/> as a PNG, atomically (temp file, then rename).</summary>
    /// <param name="image">The image.</param>
    /// <param name="path">The file to write; its folder is created.</param>
    public static void SavePng(RgbImage image, string path)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var info = new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var bitmap = new SKBitmap(info);
        byte[] rgba = new byte[image.Width * image.Height * 4];
        for (int i = 0, j = 0; i < image.Pixels.Length; i += 3, j += 4)
        {
            rgba[j] = image.Pixels[i];
            rgba[j + 1] = image.Pixels[i + 1];
            rgba[j + 2] = image.Pixels[i + 2];
            rgba[j + 3] = 255;
        }
        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        using SKData data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        CheckpointFiles.WriteBytesAtomic(path, data.Span);
    }

    /// <summary>[H, W, 3] uint8 → <see cref="RgbImage"/>.</summary>
    /// <param name="image">The tensor.</param>
    /// <returns>The image.</returns>
    public static RgbImage ToRgb(Tensor image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.dim() != 3 || image.shape[2] != 3 || image.dtype != ScalarType.Byte)
            throw new ArgumentException($"Expected an [H, W, 3] uint8 image; got {image.dtype} [{string.Join(", ", image.shape)}].", nameof(image));
        byte[] bytes = image.contiguous().cpu().data<byte>().ToArray();
        return new RgbImage((int)image.shape[1], (int)image.shape[0], bytes);
    }

    private IReadOnlyList<int> Encode(string text) => Tokenizer.Tokenizer.Encode(text);
}
