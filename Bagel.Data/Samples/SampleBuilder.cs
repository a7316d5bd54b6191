using System.Text.Json;
using Bagel.Core.Randomness;
using Bagel.Data.Diagnostics;
using Bagel.Data.Images;
using Bagel.Data.Packing;
using Bagel.Data.Sources;
using Bagel.Data.Tokenization;
using static TorchSharp.torch;

namespace Bagel.Data.Samples;

/// <summary>
/// Turns raw records into packable samples with the reference's sequence plans (training.md 4.2): T2I and image
/// folders <c>text(cfg) + noisy vae</c>; editing chains as <c>parse_row</c>; VLM conversations as <c>change_format</c>.
/// A bad record is a counted skip (null result) with a warning naming its file and row, never an exception.
/// The random draws (caption and wording choices, the edit chain's start/end and coin flip) go through the given
/// <see cref="IRandomSource"/> in the reference's order.
/// </summary>
public sealed class SampleBuilder : ISampleBuilder
{
    private readonly ITextTokenizer _tokenizer;
    private readonly ImageDecoder _decoder;
    private readonly ImageTransform _transform;
    private readonly ImageTransform? _vitTransform;
    private readonly DataSkipCounters _skips;

    /// <summary>Creates a builder for one dataset group.</summary>
    /// <param name="tokenizer">The text tokenizer (<see cref="Qwen2Tokenizer"/>, or any <see cref="ITextTokenizer"/>).</param>
    /// <param name="decoder">The image decoder (its options hold the EXIF and truncation policies).</param>
    /// <param name="transform">The group's main transform (<c>image_transform_args</c>).</param>
    /// <param name="vitTransform">The ViT copy transform of editing groups (<c>vit_image_transform_args</c>).</param>
    /// <param name="skips">Where skipped records are counted.</param>
    public SampleBuilder(ITextTokenizer tokenizer, ImageDecoder decoder, ImageTransform transform, ImageTransform? vitTransform, DataSkipCounters skips)
    {
        _tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        _decoder = decoder ?? throw new ArgumentNullException(nameof(decoder));
        _transform = transform ?? throw new ArgumentNullException(nameof(transform));
        _vitTransform = vitTransform;
        _skips = skips ?? throw new ArgumentNullException(nameof(skips));
    }

    /// <summary>Builds the sample, or returns null after counting a skip.</summary>
    /// <param name="raw">The record.</param>
    /// <param name="random">The sample's draws.</param>
    /// <returns>The sample (the caller owns it), or null.</returns>
    public PackableSample? Build(RawSample raw, IRandomSource random)
    {
        ArgumentNullException.ThrowIfNull(raw);
        ArgumentNullException.ThrowIfNull(random);
        var images = new List<Tensor>();
        try
        {
            PackableSample? sample = raw.Payload switch
            {
                T2IPayload t2i => BuildT2I(raw, t2i, random, images),
                ImageFolderPayload folder => BuildImageFolder(raw, folder, images),
                EditPayload edit => BuildEdit(raw, edit, random, images),
                VlmPayload vlm => BuildVlm(raw, vlm, images),
                _ => throw new NotSupportedException($"No sample builder for {raw.Payload.GetType().Name}; register a custom builder for custom sources."),
            };
            if (sample is null) foreach (Tensor t in images) t.Dispose();
            return sample;
        }
        catch (SkipException skip)
        {
            foreach (Tensor t in images) t.Dispose();
            _skips.Skip(raw.Index.Group, skip.Reason, skip.Where ?? raw.Origin, skip.Message);
            return null;
        }
        catch
        {
            foreach (Tensor t in images) t.Dispose();
            throw;
        }
    }

    private PackableSample BuildT2I(RawSample raw, T2IPayload payload, IRandomSource random, List<Tensor> images)
    {
        if (payload.Image is null) throw new SkipException(SkipReason.CorruptImage, "the image cell is null.");
        images.Add(_transform.Apply(Decode(payload.Image, raw.Origin)));
        string caption = ChooseCaption(payload.Captions, random);
        return new PackableSample(raw.Index, raw.Origin, [PlanItem.Text(enableCfg: true, loss: false), PlanItem.NoisyVaeImage()],
            [_tokenizer.Encode(caption)], [.. images], _transform.Options.ImageStride);
    }

    private PackableSample BuildImageFolder(RawSample raw, ImageFolderPayload payload, List<Tensor> images)
    {
        if (!File.Exists(payload.ImagePath)) throw new SkipException(SkipReason.MissingImage, $"image file '{payload.ImagePath}' does not exist.");
        images.Add(_transform.Apply(DecodeFile(payload.ImagePath)));
        return new PackableSample(raw.Index, raw.Origin, [PlanItem.Text(enableCfg: true, loss: false), PlanItem.NoisyVaeImage()],
            [_tokenizer.Encode(payload.Caption)], [.. images], _transform.Options.ImageStride);
    }

    /// <summary>The reference picks one caption uniformly among the dict's values; an empty dict gives " ".</summary>
    private static string ChooseCaption(string? json, IRandomSource random)
    {
        if (json is null) throw new SkipException(SkipReason.CaptionNotObject, "the captions cell is null.");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException ex)
        {
            throw new SkipException(SkipReason.CaptionNotObject, $"captions are not valid JSON: {ex.Message}");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new SkipException(SkipReason.CaptionNotObject, $"captions must be a JSON object of strings, found {doc.RootElement.ValueKind} (the reference crashes here).");
            var values = doc.RootElement.EnumerateObject().Select(p => p.Value).ToList();
            if (values.Any(v => v.ValueKind != JsonValueKind.String))
                throw new SkipException(SkipReason.CaptionNotObject, "every caption value must be a string.");
            return values.Count == 0 ? " " : values[(int)random.NextInt(0, values.Count)].GetString()!;
        }
    }

    private PackableSample BuildEdit(RawSample raw, EditPayload payload, IRandomSource random, List<Tensor> images)
    {
        ImageTransform vit = _vitTransform ?? throw new InvalidOperationException($"Group '{raw.Index.Group}' is an editing group but has no vit_image_transform_args.");
        int n = payload.Images.Count;
        if (n < 2) throw new SkipException(SkipReason.BadEditChain, $"an edit chain needs at least 2 images, found {n}.");
        if (payload.Instructions.Count != n - 1)
            throw new SkipException(SkipReason.BadEditChain, $"{n} images need {n - 1} instruction entries, found {payload.Instructions.Count}.");
        var wordings = new List<IReadOnlyList<string>>();
        for (int i = 0; i < payload.Instructions.Count; i++)
        {
            if (payload.Instructions[i] is not IReadOnlyList<string?> list)
                throw new SkipException(SkipReason.InstructionNotList, $"instruction entry {i} is not a list of wordings (the reference would pick a random character of it).");
            if (list.Count == 0) throw new SkipException(SkipReason.EmptyInstructionList, $"instruction entry {i} is an empty list.");
            if (list.Any(w => w is null)) throw new SkipException(SkipReason.InstructionNotList, $"instruction entry {i} holds a null wording.");
            wordings.Add([.. list.Select(w => w!)]);
        }

        var plan = new List<PlanItem>();
        var texts = new List<int[]>();
        string Choose(int step) => wordings[step][(int)random.NextInt(0, wordings[step].Count)];
        RgbImage Image(int i) => payload.Images[i] is { } bytes ? Decode(bytes, $"{raw.Origin} image {i}") : throw new SkipException(SkipReason.CorruptImage, $"image {i} is null.");
        void AddImage(RgbImage image, bool loss, bool vae, bool vitCopy)
        {
            if (loss)
            {
                plan.Add(PlanItem.NoisyVaeImage());
                images.Add(_transform.Apply(image));
            }
            if (vae)
            {
                plan.Add(PlanItem.CleanVaeImage(enableCfg: true));
                images.Add(loss ? images[^1].clone() : _transform.Apply(image));
            }
            if (vitCopy)
            {
                plan.Add(PlanItem.VitImage(enableCfg: true));
                images.Add(vit.Apply(image));
            }
        }
        void AddText(string text)
        {
            plan.Add(PlanItem.Text(enableCfg: true, loss: false));
            texts.Add(_tokenizer.Encode(text));
        }

        int start = (int)random.NextInt(0, n - 1);
        int end = (int)random.NextInt(start + 1, Math.Min(start + 3, n));
        AddImage(Image(start), loss: false, vae: true, vitCopy: true);
        if (end - start > 1 && random.NextUniform() < 0.5)
        {
            if (end == n - 1) end -= 1; // the reference's quirk, kept for parity
            var joined = new System.Text.StringBuilder();
            for (int idx = start + 1; idx <= end; idx++) joined.Append(Choose(idx - 1)).Append(". ");
            AddText(joined.ToString().TrimEnd());
            AddImage(Image(end), loss: true, vae: false, vitCopy: false);
        }
        else
        {
            for (int idx = start + 1; idx <= end; idx++)
            {
                AddText(Choose(idx - 1));
                AddImage(Image(idx), loss: true, vae: idx != end, vitCopy: idx != end);
            }
        }
        return new PackableSample(raw.Index, raw.Origin, plan, texts, [.. images], _transform.Options.ImageStride);
    }

    private PackableSample? BuildVlm(RawSample raw, VlmPayload payload, List<Tensor> images)
    {
        VlmRecord record;
        try
        {
            record = VlmConversation.Parse(payload.Line);
        }
        catch (VlmRecordException ex)
        {
            throw new SkipException(ex.Reason, ex.Message);
        }
        var decoded = new List<RgbImage>();
        foreach (string relative in record.ImagePaths)
        {
            string path = Path.Combine(payload.ImageDirectory, relative); // an absolute path in the line overrides, as os.path.join
            if (!File.Exists(path)) throw new SkipException(SkipReason.MissingImage, $"image '{path}' does not exist.");
            decoded.Add(DecodeFile(path));
        }
        foreach (RgbImage image in decoded) images.Add(_transform.Apply(image, imgNum: decoded.Count));

        var plan = new List<PlanItem>();
        var texts = new List<int[]>();
        foreach (ConversationSegment segment in record.Segments)
        {
            if (segment.IsImage)
            {
                plan.Add(PlanItem.VitImage(enableCfg: false));
                continue;
            }
            int[] ids = _tokenizer.Encode(segment.Text!);
            if (ids.Length == 0) continue; // segments that tokenize to nothing are dropped, as the reference does
            plan.Add(PlanItem.Text(enableCfg: false, loss: segment.HasLoss));
            texts.Add(ids);
        }
        if (!plan.Any(p => p.Loss)) throw new SkipException(SkipReason.NoLossText, "no gpt turn with text: nothing to learn from.");
        return new PackableSample(raw.Index, raw.Origin, plan, texts, [.. images]);
    }

    private RgbImage Decode(byte[] bytes, string where)
    {
        try
        {
            return _decoder.Decode(bytes, where);
        }
        catch (ImageDecodeException ex)
        {
            throw new SkipException(ToReason(ex.Failure), ex.Message, where);
        }
    }

    private RgbImage DecodeFile(string path)
    {
        try
        {
            return _decoder.DecodeFile(path);
        }
        catch (ImageDecodeException ex)
        {
            // The message names the image file; the warning's origin stays the record (a VLM line's file and number).
            throw new SkipException(ToReason(ex.Failure), ex.Message);
        }
    }

    private static SkipReason ToReason(ImageDecodeFailure failure) => failure switch
    {
        ImageDecodeFailure.Truncated => SkipReason.TruncatedImage,
        ImageDecodeFailure.TooLarge => SkipReason.ImageTooLarge,
        _ => SkipReason.CorruptImage,
    };

    private sealed class SkipException(SkipReason reason, string message, string? where = null) : Exception(message)
    {
        public SkipReason Reason { get; } = reason;

        public string? Where { get; } = where;
    }
}
