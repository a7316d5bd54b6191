namespace Bagel.Data.Tokenization;

/// <summary>
/// GPT-2's byte-to-unicode table, used by every byte-level BPE vocabulary (Qwen2 included): each byte 0..255 is shown
/// as one printable character, so that a vocabulary entry such as "Ġworld" stands for the bytes " world".
/// Printable Latin-1 bytes stand for themselves; the other 68 bytes map, in order, to U+0100 and upward.
/// </summary>
internal static class ByteLevelAlphabet
{
    /// <summary>The first character used for the bytes that are not printable (GPT-2: 2**8).</summary>
    private const int FirstShiftedChar = 256;

    private static readonly char[] ByteToChar = BuildByteToChar();

    /// <summary>Indexed by character; -1 for characters outside the alphabet (all alphabet characters are below U+0144).</summary>
    private static readonly short[] CharToByte = BuildCharToByte(ByteToChar);

    /// <summary>The character that stands for <paramref name="value"/>.</summary>
    public static char ToChar(byte value) => ByteToChar[value];

    /// <summary>The byte that <paramref name="c"/> stands for; false when <paramref name="c"/> is not in the alphabet.</summary>
    public static bool TryToByte(char c, out byte value)
    {
        short b = c < CharToByte.Length ? CharToByte[c] : (short)-1;
        value = (byte)b;
        return b >= 0;
    }

    private static bool IsPrintableLatin1(int b) =>
        b is >= '!' and <= '~' or >= '\u00A1' and <= '\u00AC' or >= '\u00AE' and <= '\u00FF';

    private static char[] BuildByteToChar()
    {
        var table = new char[256];
        int next = FirstShiftedChar;
        for (int b = 0; b < 256; b++)
            table[b] = IsPrintableLatin1(b) ? (char)b : (char)next++;
        return table;
    }

    private static short[] BuildCharToByte(char[] byteToChar)
    {
        var map = new short[byteToChar.Max() + 1];
        Array.Fill(map, (short)-1);
        for (int b = 0; b < 256; b++) map[byteToChar[b]] = (short)b;
        return map;
    }
}
