using Bagel.Core.Batching;
using Bagel.Core.Randomness;
using static TorchSharp.torch;

namespace Bagel.Models.Generation;

/// <summary>What <see cref="BagelGenerator.GenerateImage"/> produced.</summary>
/// <param name="Image">[H, W, 3] uint8 on the CPU; the caller disposes it.</param>
/// <param name="Height">The image height in pixels (the last input image's, for editing).</param>
/// <param name="Width">The image width in pixels.</param>
/// <param name="Thinking">The reasoning text of the think mode, or null.</param>
public sealed record GeneratedImage(Tensor Image, int Height, int Width, string? Thinking) : IDisposable
{
    /// <inheritdoc />
    public void Dispose() => Image.Dispose();
}

public sealed partial class BagelGenerator
{
    /// <summary>
    /// Image generation over interleaved inputs (the reference's <c>interleave_inference</c> with
    /// <c>understanding_output=False</c>); text-to-image is one text item, editing is <c>[image, instruction]</c>.
    /// Three contexts are built as the reference does: the conditional one gets everything (an image as VAE then ViT
    /// tokens); the image-unconditional one gets only the texts; the text-unconditional one is a copy of the
    /// conditional context taken before each text item (and after each image), so it holds the images but not the last
    /// instruction. An input image sets the output size to its own (after the VAE transform), as in the reference.
    /// With <paramref name="think"/>: the generation system prompt (<see cref="ThinkPrompts.Generation"/>) goes first
    /// into the conditional and image-unconditional contexts, the model then writes its plan (decoded with
    /// <paramref name="thinkOptions"/>), and the plan's text, re-encoded, is appended to the conditional context only.
    /// </summary>
    /// <param name="inputs">Texts and images in order.</param>
    /// <param name="options">Sampling settings; Height/Width are replaced by the last input image's size.</param>
    /// <param name="random">Every draw in the reference's order: the VAE posterior noise of each input image, the
    /// think mode's sampling draws (when sampling), then the initial noise.</param>
    /// <param name="think">Write a plan first (needs a decoder; see the constructor).</param>
    /// <param name="thinkOptions">Decoding settings of the plan (default <see cref="TextGenerationOptions"/>'s).</param>
    /// <param name="onStep">Called after every Euler step, or null.</param>
    /// <param name="cancellationToken">Checked between steps.</param>
    /// <returns>The image and the plan.</returns>
    public GeneratedImage GenerateImage(IReadOnlyList<InterleaveInput> inputs, ImageGenerationOptions options, IRandomSource random,
        bool think = false, TextGenerationOptions? thinkOptions = null, Action<FlowStep>? onStep = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(random);
        if (think && _decoder is null)
            throw new InvalidOperationException("The think mode decodes the model's plan to text; create the generator with a decoder.");
        var conditional = CreateContext();
        var cfgText = CreateContext();
        var cfgImg = CreateContext();
        try
        {
            if (think)
            {
                IReadOnlyList<int> system = Encode(ThinkPrompts.Generation);
                AppendText(conditional, system);
                AppendText(cfgImg, system);
            }
            (int height, int width) = (options.Height, options.Width);
            foreach (InterleaveInput input in inputs)
            {
                cancellationToken.ThrowIfCancellationRequested();
                switch (input)
                {
                    case InterleaveInput.Text text:
                        Replace(ref cfgText, conditional.Clone());
                        AppendText(conditional, text.TokenIds);
                        AppendText(cfgImg, text.TokenIds);
                        break;
                    case InterleaveInput.Image image:
                        Tensor vae = image.Pixels.VaePixels ?? throw new ArgumentException("An input image for generation needs its VAE pixels.", nameof(inputs));
                        AppendImage(conditional, image.Pixels, vae: true, vit: true, random);
                        (height, width) = ((int)vae.shape[1], (int)vae.shape[2]);
                        Replace(ref cfgText, conditional.Clone());
                        break;
                    default:
                        throw new ArgumentException($"Unsupported input {input.GetType().Name}.", nameof(inputs));
                }
            }
            string? thinking = null;
            if (think)
            {
                IReadOnlyList<int> plan = GenerateText(conditional, thinkOptions ?? new TextGenerationOptions(), random, null, cancellationToken);
                thinking = DecodeAnswer(plan);
                AppendText(conditional, Encode(thinking));
            }
            ImageGenerationOptions sized = options with { Height = height, Width = width };
            using Tensor latent = GenerateLatent(conditional, cfgText, cfgImg, sized, random, onStep, cancellationToken);
            return new GeneratedImage(DecodeImage(latent, height, width), height, width, thinking);
        }
        finally
        {
            conditional.Dispose();
            cfgText.Dispose();
            cfgImg.Dispose();
        }
    }

    /// <summary>Image editing (the reference's <c>inferencer(image=…, text=instruction)</c>): <see cref="GenerateImage"/>
    /// over <c>[image, instruction]</c>; the output has the input image's size.</summary>
    /// <param name="image">The input image after the VAE and ViT transforms.</param>
    /// <param name="instruction">The instruction's token ids (without bos/eos).</param>
    /// <param name="options">Sampling settings (the size is the image's).</param>
    /// <param name="random">The posterior noise of the input, then the initial noise.</param>
    /// <param name="onStep">Called after every Euler step, or null.</param>
    /// <param name="cancellationToken">Checked between steps.</param>
    /// <returns>The edited image [H, W, 3] uint8 on the CPU; the caller owns it.</returns>
    public Tensor Edit(ContextImage image, IReadOnlyList<int> instruction, ImageGenerationOptions options, IRandomSource random,
        Action<FlowStep>? onStep = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(instruction);
        GeneratedImage result = GenerateImage([new InterleaveInput.Image(image), new InterleaveInput.Text(instruction)], options, random,
            onStep: onStep, cancellationToken: cancellationToken);
        return result.Image;
    }

    private static void Replace(ref GenerationContext target, GenerationContext value)
    {
        target.Dispose();
        target = value;
    }

    /// <summary>The token grid an image of this size needs (for callers checking a size before generating).</summary>
    /// <param name="height">Height in pixels.</param>
    /// <param name="width">Width in pixels.</param>
    /// <returns>The grid.</returns>
    /// <exception cref="ArgumentException">The size does not fit the model.</exception>
    public LatentGrid GridFor(int height, int width) => Grid(new ImageGenerationOptions { Height = height, Width = width });
}
