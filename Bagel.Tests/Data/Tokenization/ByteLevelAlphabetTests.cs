using Bagel.Data.Tokenization;

namespace Bagel.Tests.Data.Tokenization;

/// <summary>The GPT-2 byte-to-unicode table behind every byte-level vocabulary.</summary>
public sealed class ByteLevelAlphabetTests
{
    [Fact]
    public void EveryByteHasItsOwnCharacterAndMapsBack()
    {
        var seen = new HashSet<char>();
        for (int b = 0; b < 256; b++)
        {
            char c = ByteLevelAlphabet.ToChar((byte)b);
            Assert.True(seen.Add(c), $"byte {b} shares its character with another byte");
            Assert.Equal(TinyTokenizerFiles.ByteChar(b), c);
            Assert.True(ByteLevelAlphabet.TryToByte(c, out byte back));
            Assert.Equal(b, back);
        }
    }

    [Theory]
    [InlineData((byte)' ', 'Ġ')]
    [InlineData((byte)'\n', 'Ċ')]
    [InlineData((byte)'!', '!')]
    [InlineData((byte)0xAD, 'Ń')]
    public void KnownBytesUseTheVocabularyCharacters(byte value, char expected) =>
        Assert.Equal(expected, ByteLevelAlphabet.ToChar(value));

    [Fact]
    public void CharactersOutsideTheAlphabetAreRejected()
    {
        Assert.False(ByteLevelAlphabet.TryToByte(' ', out _));
        Assert.False(ByteLevelAlphabet.TryToByte('\u4E2D', out _));
    }
}
