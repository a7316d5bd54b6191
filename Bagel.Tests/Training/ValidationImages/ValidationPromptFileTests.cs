using Bagel.Tests.Infrastructure;
using Bagel.Training.ValidationImages;

namespace Bagel.Tests.Training.ValidationImages;

/// <summary>The validation prompts file: JSON lines of text-to-image prompts, edits and questions.</summary>
public sealed class ValidationPromptFileTests
{
    [Fact]
    public void ReadsAllThreeKindsSkippingBlankAndCommentLinesWithImagePathsFromTheFilesFolder()
    {
        using var dir = new TempDirectory("bagel-prompts-");
        string image = dir.File("in/cat.png", "not really a png");
        string file = dir.File("prompts.jsonl", "# comment\n{\"prompt\": \"a red fox\"}\n\n{\"edit\": \"make it blue\", \"image\": \"in/cat.png\"}\r\n" +
            $"{{\"question\": \"What is it?\", \"image\": \"{image}\"}}\n");

        IReadOnlyList<ValidationPrompt> prompts = ValidationPromptFile.Load(file);

        Assert.Equal(
        [
            new ValidationPrompt(ValidationPromptKind.TextToImage, "a red fox", null, $"{file}:2"),
            new ValidationPrompt(ValidationPromptKind.Edit, "make it blue", image, $"{file}:4"),
            new ValidationPrompt(ValidationPromptKind.Question, "What is it?", image, $"{file}:5"),
        ], prompts);
        Assert.Equal(["prompt", "edit", "question"], prompts.Select(p => p.KindName));
    }

    [Theory]
    [InlineData("{\"prompt\": \"a\"}\n{\"promt\": \"b\"}", ":2: unknown key 'promt'")]
    [InlineData("{\"prompt\": \"a\", \"edit\": \"b\", \"image\": \"x.png\"}", ":1: one entry per line, but this one has 'prompt' and 'edit'")]
    [InlineData("{\"edit\": \"b\"}", ":1: 'edit' needs an 'image'")]
    [InlineData("{\"question\": \"q\", \"image\": \"missing.png\"}", ":1: image 'missing.png'")]
    [InlineData("{\"prompt\": \"a\", \"image\": \"x.png\"}", ":1: a 'prompt' takes no 'image'")]
    [InlineData("{\"prompt\": \"\"}", ":1: 'prompt' must be a non-empty string")]
    [InlineData("{\"prompt\": 3}", ":1: 'prompt' must be a non-empty string")]
    [InlineData("[\"a red fox\"]", ":1: expected a JSON object")]
    [InlineData("a red fox", ":1: not a JSON object")]
    [InlineData("{\"image\": \"x.png\"}", ":1: no 'prompt', 'edit' or 'question' key")]
    [InlineData("# only a comment\n\n", "has no entry")]
    public void ABadLineIsReportedWithItsFileAndLine(string text, string expected)
    {
        using var dir = new TempDirectory("bagel-prompts-");
        dir.File("x.png", "x");
        string file = dir.File("prompts.jsonl", text);

        var e = Assert.Throws<ValidationPromptException>(() => ValidationPromptFile.Load(file));

        Assert.Contains(file, e.Message, StringComparison.Ordinal);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AMissingFileIsNamed()
    {
        using var dir = new TempDirectory("bagel-prompts-");
        string missing = Path.Combine(dir.Path, "nope.jsonl");
        var e = Assert.Throws<ValidationPromptException>(() => ValidationPromptFile.Load(missing));
        Assert.Equal($"Validation prompts file {missing} does not exist.", e.Message);
    }
}
