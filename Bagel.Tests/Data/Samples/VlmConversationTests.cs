using Bagel.Data.Diagnostics;
using Bagel.Data.Samples;

namespace Bagel.Tests.Data.Samples;

public sealed class VlmConversationTests
{
    [Fact]
    public void HumanTurnsSplitOnTagsWithStrippedPiecesAndGptTurnsKeepTheirText()
    {
        var record = VlmConversation.Parse("""
            {"id": "ex-001", "image": "coco/000123.jpg", "conversations": [
              {"from": "human", "value": "<image>\nWhat is on the plate? "},
              {"from": "gpt", "value": " Two slices of toast. "},
              {"from": "system", "value": "ignored"},
              {"from": "human", "value": " Thanks "}]}
            """);

        Assert.Equal(["coco/000123.jpg"], record.ImagePaths);
        Assert.Equal(
            [ConversationSegment.Image, new("What is on the plate?", false), new(" Two slices of toast. ", true), new(" Thanks ", false)],
            record.Segments);
    }

    [Fact]
    public void SeveralImagesAcrossTurns()
    {
        var record = VlmConversation.Parse("""{"image": ["a.png", "b.png"], "conversations": [{"from": "human", "value": "Compare <image> and <image>."}, {"from": "gpt", "value": "Same."}]}""");
        Assert.Equal([new("Compare", false), ConversationSegment.Image, new("and", false), ConversationSegment.Image, new(".", false), new("Same.", true)], record.Segments);
    }

    [Theory]
    [InlineData("""{"image": "a.png", "conversations": [{"from": "human", "value": "<image><image> two?"}, {"from": "gpt", "value": "x"}]}""", SkipReason.ImageTagMismatch)]
    [InlineData("""{"image": ["a.png", "b.png"], "conversations": [{"from": "human", "value": "<image> one"}, {"from": "gpt", "value": "x"}]}""", SkipReason.ImageTagMismatch)]
    [InlineData("""{"image": "a.png", "conversations": [{"from": "human", "value": "no tag"}, {"from": "gpt", "value": "x"}]}""", SkipReason.ImageTagMismatch)]
    [InlineData("""{"video": "clip.mp4", "conversations": [{"from": "human", "value": "<video> what?"}]}""", SkipReason.Video)]
    [InlineData("""{"image": "a.png", "conversations": [{"from": "human", "value": "<image>"}, {"from": "gpt"}]}""", SkipReason.MalformedJsonLine)]
    [InlineData("""{"image": "a.png", "conversations": "<image> hi"}""", SkipReason.MalformedJsonLine)]
    [InlineData("""{"image": 3, "conversations": []}""", SkipReason.MalformedJsonLine)]
    [InlineData("""["not", "an", "object"]""", SkipReason.MalformedJsonLine)]
    [InlineData("""{"image": "a.png", "conversations": [""", SkipReason.MalformedJsonLine)]
    public void BadLinesMapToTheirSkipReason(string line, SkipReason reason)
    {
        var ex = Assert.Throws<VlmRecordException>(() => VlmConversation.Parse(line));
        Assert.Equal(reason, ex.Reason);
        Assert.False(string.IsNullOrWhiteSpace(ex.Message));
    }
}
