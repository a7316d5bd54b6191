using System.Text.Json;

namespace Bagel.Data.Samples;

/// <summary>One element of a parsed VLM conversation: a text segment (with or without loss) or an image slot.</summary>
/// <param name="Text">The text, or null for an image slot.</param>
/// <param name="HasLoss">Whether the text carries a loss (gpt turns).</param>
public sealed record ConversationSegment(string? Text, bool HasLoss)
{
    /// <summary>An image slot.</summary>
    public static ConversationSegment Image { get; } = new(null, false);

    /// <summary>Whether this is an image slot.</summary>
    public bool IsImage => Text is null;
}

/// <summary>A VLM JSONL line, parsed and checked.</summary>
/// <param name="ImagePaths">The <c>image</c> field as a list (a single string becomes one entry).</param>
/// <param name="Segments">The conversation in packing order.</param>
public sealed record VlmRecord(IReadOnlyList<string> ImagePaths, IReadOnlyList<ConversationSegment> Segments);

/// <summary>Why a VLM line cannot become a sample; the message is the skip warning's detail.</summary>
public sealed class VlmRecordException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="reason">The skip counter it maps to.</param>
    /// <param name="message">What is wrong with the line.</param>
    public VlmRecordException(Diagnostics.SkipReason reason, string message) : base(message) => Reason = reason;

    /// <summary>The skip counter it maps to.</summary>
    public Diagnostics.SkipReason Reason { get; }
}

/// <summary>
/// Parses a VLM line as the reference's <c>change_format</c> does: a human turn without <c>&lt;image&gt;</c> is one
/// no-loss text segment (not stripped); a human turn with tags is split on them, each non-empty piece stripped, with
/// an image slot between pieces; a gpt turn is one loss-bearing text segment (not stripped); other roles are ignored.
/// Departures (each a counted skip instead of the reference's crash or silent waste): the number of <c>&lt;image&gt;</c>
/// tags over all human turns must equal the number of images; a <c>video</c> line is skipped (video is not supported).
/// </summary>
public static class VlmConversation
{
    /// <summary>The image placeholder.</summary>
    public const string ImageTag = "<image>";

    /// <summary>Parses and checks one JSONL line.</summary>
    /// <param name="line">The raw line.</param>
    /// <returns>The record.</returns>
    /// <exception cref="VlmRecordException">The line cannot be used; its reason names the skip counter.</exception>
    public static VlmRecord Parse(string line)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(line);
        }
        catch (JsonException ex)
        {
            throw new VlmRecordException(Diagnostics.SkipReason.MalformedJsonLine, $"not valid JSON: {ex.Message}");
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new VlmRecordException(Diagnostics.SkipReason.MalformedJsonLine, $"expected a JSON object, found {root.ValueKind}.");
            if (root.TryGetProperty("video", out _) && !root.TryGetProperty("image", out _))
                throw new VlmRecordException(Diagnostics.SkipReason.Video, "video lines are not supported (counted skip).");
            var images = new List<string>();
            if (root.TryGetProperty("image", out var image))
            {
                if (image.ValueKind == JsonValueKind.String) images.Add(image.GetString()!);
                else if (image.ValueKind == JsonValueKind.Array && image.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String))
                    images.AddRange(image.EnumerateArray().Select(e => e.GetString()!));
                else throw new VlmRecordException(Diagnostics.SkipReason.MalformedJsonLine, "'image' must be a string or a list of strings.");
            }
            if (!root.TryGetProperty("conversations", out var turns) || turns.ValueKind != JsonValueKind.Array)
                throw new VlmRecordException(Diagnostics.SkipReason.MalformedJsonLine, "'conversations' must be a list of {\"from\", \"value\"} turns.");

            var segments = new List<ConversationSegment>();
            int tags = 0;
            foreach (var turn in turns.EnumerateArray())
            {
                if (turn.ValueKind != JsonValueKind.Object || !turn.TryGetProperty("from", out var from) || from.ValueKind != JsonValueKind.String ||
                    !turn.TryGetProperty("value", out var value) || value.ValueKind != JsonValueKind.String)
                    throw new VlmRecordException(Diagnostics.SkipReason.MalformedJsonLine, "every turn needs string 'from' and 'value'.");
                string text = value.GetString()!;
                switch (from.GetString())
                {
                    case "human" when !text.Contains(ImageTag, StringComparison.Ordinal):
                        segments.Add(new ConversationSegment(text, false));
                        break;
                    case "human":
                        string[] pieces = text.Split(ImageTag);
                        for (int i = 0; i < pieces.Length; i++)
                        {
                            string piece = pieces[i].Trim();
                            if (piece.Length > 0) segments.Add(new ConversationSegment(piece, false));
                            if (i != pieces.Length - 1)
                            {
                                segments.Add(ConversationSegment.Image);
                                tags++;
                            }
                        }
                        break;
                    case "gpt":
                        segments.Add(new ConversationSegment(text, true));
                        break;
                }
            }
            if (tags != images.Count)
                throw new VlmRecordException(Diagnostics.SkipReason.ImageTagMismatch,
                    $"the human turns hold {tags} {ImageTag} tag(s) but the line lists {images.Count} image(s).");
            return new VlmRecord(images, segments);
        }
    }
}
