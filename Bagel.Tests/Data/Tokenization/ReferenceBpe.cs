using System.Text;
using System.Text.Json;

namespace Bagel.Tests.Data.Tokenization;

/// <summary>
/// A deliberately plain byte-level BPE (GPT-2's original loop: find the adjacent pair with the lowest merge rank,
/// merge every occurrence left to right, repeat), written for the tests only, to cross-check the library's merging
/// on far more text than the 46 vectors. Slow, and not thread-safe; never used by the product.
/// </summary>
internal sealed class ReferenceBpe
{
    private readonly Dictionary<(string, string), int> _ranks = [];
    private readonly Dictionary<string, int> _vocabulary;

    public ReferenceBpe(string vocabPath, string mergesPath)
    {
        _vocabulary = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(vocabPath))!;
        foreach (string line in File.ReadLines(mergesPath))
        {
            if (line.Length == 0) continue;
            int space = line.IndexOf(' ');
            _ranks.TryAdd((line[..space], line[(space + 1)..]), _ranks.Count);
        }
    }

    /// <summary>The ids of one pre-tokenized piece.</summary>
    public IEnumerable<int> EncodePiece(string piece)
    {
        var parts = Encoding.UTF8.GetBytes(piece).Select(b => TinyTokenizerFiles.ByteChar(b).ToString()).ToList();
        while (parts.Count > 1)
        {
            (string, string)? best = null;
            int bestRank = int.MaxValue;
            for (int i = 0; i + 1 < parts.Count; i++)
            {
                if (_ranks.TryGetValue((parts[i], parts[i + 1]), out int rank) && rank < bestRank)
                {
                    bestRank = rank;
                    best = (parts[i], parts[i + 1]);
                }
            }
            if (best is not (string left, string right)) break;
            var merged = new List<string>(parts.Count);
            for (int i = 0; i < parts.Count; i++)
            {
                if (i + 1 < parts.Count && parts[i] == left && parts[i + 1] == right)
                {
                    merged.Add(left + right);
                    i++;
                }
                else
                {
                    merged.Add(parts[i]);
                }
            }
            parts = merged;
        }
        return parts.Select(part => _vocabulary[part]);
    }
}
