using System.Text;
using System.Text.RegularExpressions;
using Bagel.Data.Tokenization;

namespace Bagel.Tests.Data.Tokenization;

/// <summary>The hand-written Qwen2 split against the pattern it implements, and on characters above U+FFFF.</summary>
public sealed class Qwen2PreTokenizerTests
{
    /// <summary>
    /// BMP characters of every class the pattern tells apart: letters (Latin, accented, CJK, the contraction letters
    /// in both cases), digits of three Unicode number categories, spaces and newlines of several kinds, punctuation.
    /// </summary>
    private const string CharacterPool = "aSsTtRrEeVvMmLlDdxZé中ß0719٣½Ⅻ  \t\n\r\u00A0\u3000\u2028\u000B\u0085\u001C\u1680'\"'.,!?-_#@(){}—…€\u0301";

    private static string[] SplitWithScanner(string text) =>
        [.. Qwen2PreTokenizer.Split(text).Select(piece => text.Substring(piece.Offset, piece.Length))];

    [Fact]
    public void SplitsBmpTextExactlyAsThePatternDoes()
    {
        var pattern = new Regex(Qwen2PreTokenizer.SplitPattern, RegexOptions.CultureInvariant);
        var random = new Random(20260124);
        var text = new StringBuilder();
        for (int sample = 0; sample < 3000; sample++)
        {
            text.Clear();
            int length = random.Next(0, 24);
            for (int i = 0; i < length; i++) text.Append(CharacterPool[random.Next(CharacterPool.Length)]);
            string input = text.ToString();
            string[] expected = [.. pattern.Matches(input).Select(m => m.Value)];
            Assert.True(expected.SequenceEqual(SplitWithScanner(input)),
                $"\"{Regex.Escape(input)}\": pattern [{string.Join("|", expected)}], scanner [{string.Join("|", SplitWithScanner(input))}]");
        }
    }

    [Theory]
    [InlineData("Hello world", new[] { "Hello", " world" })]
    [InlineData("I'VE it's", new[] { "I", "'VE", " it", "'s" })]
    [InlineData("3333", new[] { "3", "3", "3", "3" })]
    [InlineData("a  b", new[] { "a", " ", " b" })]
    [InlineData("x \n\n y", new[] { "x", " \n\n", " y" })]
    [InlineData("end.\n\n", new[] { "end", ".\n\n" })]
    [InlineData("tail   ", new[] { "tail", "   " })]
    public void KnownSplits(string text, string[] expected) => Assert.Equal(expected, SplitWithScanner(text));

    [Theory]
    // U+1D400 MATHEMATICAL BOLD CAPITAL A and U+20000 (CJK Extension B) are letters: one word with their neighbours.
    [InlineData("a\U0001D400b", new[] { "a\U0001D400b" })]
    [InlineData("中\U00020000文 x", new[] { "中\U00020000文", " x" })]
    // U+1D7D9 MATHEMATICAL DOUBLE-STRUCK DIGIT ONE is a number: a piece of its own.
    [InlineData("x\U0001D7D9y", new[] { "x", "\U0001D7D9", "y" })]
    // Emoji are symbols: they join the punctuation run, space included.
    [InlineData("hi \U0001F999!", new[] { "hi", " \U0001F999!" })]
    public void CharactersAboveU_FFFFAreClassifiedAsWholeCodePoints(string text, string[] expected) =>
        Assert.Equal(expected, SplitWithScanner(text));

    [Fact]
    public void ALoneSurrogateIsTreatedAsPunctuation()
    {
        string text = "ab" + (char)0xD800 + "! c";
        Assert.Equal(["ab", text[2..4], " c"], SplitWithScanner(text));
    }
}
