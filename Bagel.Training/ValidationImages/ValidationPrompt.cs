namespace Bagel.Training.ValidationImages;

/// <summary>What a validation prompt asks the model for.</summary>
public enum ValidationPromptKind
{
    /// <summary>Text-to-image: an image from <see cref="ValidationPrompt.Text"/>.</summary>
    TextToImage,

    /// <summary>Image editing: <see cref="ValidationPrompt.ImagePath"/> changed as <see cref="ValidationPrompt.Text"/> says.</summary>
    Edit,

    /// <summary>VLM answering: an answer to the question <see cref="ValidationPrompt.Text"/> about <see cref="ValidationPrompt.ImagePath"/>.</summary>
    Question,
}

/// <summary>One entry of a validation prompts file (see <see cref="ValidationPromptFile"/>).</summary>
/// <param name="Kind">What is asked.</param>
/// <param name="Text">The prompt, the edit instruction or the question.</param>
/// <param name="ImagePath">The input image (full path) of an edit or a question; null for text-to-image.</param>
/// <param name="Source">Where the entry was read (<c>file:line</c>), for messages.</param>
public sealed record ValidationPrompt(ValidationPromptKind Kind, string Text, string? ImagePath = null, string? Source = null)
{
    /// <summary>A text-to-image prompt.</summary>
    /// <param name="prompt">The prompt.</param>
    /// <returns>The entry.</returns>
    public static ValidationPrompt TextToImage(string prompt) => new(ValidationPromptKind.TextToImage, prompt);

    /// <summary>The kind's name in the prompts file: <c>prompt</c>, <c>edit</c> or <c>question</c>.</summary>
    public string KindName => Kind switch
    {
        ValidationPromptKind.TextToImage => ValidationPromptFile.PromptKey,
        ValidationPromptKind.Edit => ValidationPromptFile.EditKey,
        _ => ValidationPromptFile.QuestionKey,
    };
}
