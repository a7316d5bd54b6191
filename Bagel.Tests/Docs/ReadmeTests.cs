using System.Text;
using System.Text.RegularExpressions;
using Bagel.BuilderSamples;
using Bagel.Tests.Data.Pipeline;
using Bagel.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bagel.Tests.Docs;

/// <summary>
/// The README and docs stay true: the README's TrainerBuilder example is the sample file verbatim (which this test
/// project compiles, and which trains here), every relative link points at a file and heading that exist, and every
/// "see ..." in the prose is a link.
/// </summary>
public sealed partial class ReadmeTests
{
    private const string ExampleHeading = "## Training in code: TrainerBuilder on a plain image folder";
    private static readonly string ExampleFile = Path.Combine("Bagel.Samples", "Bagel.BuilderSamples", "ImageFolderTraining.cs");

    private static string Root => SharedData.RepositoryRoot;

    private static IEnumerable<string> Documents() =>
        [Path.Combine(Root, "README.md"), .. Directory.GetFiles(Path.Combine(Root, "docs"), "*.md").Order(StringComparer.Ordinal)];

    private static string Normalize(string text) => text.Replace("\r\n", "\n", StringComparison.Ordinal).TrimEnd('\n');

    /// <summary>The lines of a markdown file outside fenced code blocks, with their 1-based numbers.</summary>
    private static IEnumerable<(int Number, string Text)> ProseLines(string file)
    {
        bool fenced = false;
        int number = 0;
        foreach (string line in File.ReadLines(file))
        {
            number++;
            if (line.TrimStart().StartsWith("```", StringComparison.Ordinal))
            {
                fenced = !fenced;
                continue;
            }
            if (!fenced) yield return (number, line);
        }
    }

    /// <summary>GitHub's heading anchor: lower case, punctuation other than '-' and '_' dropped, spaces to '-'.</summary>
    private static string Slug(string heading)
    {
        var slug = new StringBuilder();
        foreach (char c in heading.Trim().ToLowerInvariant())
        {
            if (char.IsLetterOrDigit(c) || c is '-' or '_') slug.Append(c);
            else if (c == ' ') slug.Append('-');
        }
        return slug.ToString();
    }

    private static HashSet<string> Anchors(string file) =>
        [.. ProseLines(file).Where(l => l.Text.StartsWith('#')).Select(l => Slug(l.Text.TrimStart('#')))];

    [GeneratedRegex(@"\[[^\]]*\]\(([^)\s]+)\)")]
    private static partial Regex Link();

    [GeneratedRegex(@"\bsee\s", RegexOptions.IgnoreCase)]
    private static partial Regex See();

    [Fact]
    public void TheReadmesTrainerBuilderExampleIsTheSampleFileVerbatim()
    {
        string readme = Normalize(File.ReadAllText(Path.Combine(Root, "README.md")));
        int heading = readme.IndexOf(ExampleHeading, StringComparison.Ordinal);
        Assert.True(heading >= 0, $"README.md has no section '{ExampleHeading}'.");
        int start = readme.IndexOf("```csharp\n", heading, StringComparison.Ordinal) + "```csharp\n".Length;
        int end = readme.IndexOf("\n```", start, StringComparison.Ordinal);
        Assert.Equal(Normalize(File.ReadAllText(Path.Combine(Root, ExampleFile))), readme[start..end]);
    }

    [Fact]
    public void EveryRelativeLinkInTheReadmeAndDocsResolves()
    {
        var broken = new List<string>();
        foreach (string document in Documents())
            foreach ((int number, string text) in ProseLines(document))
                foreach (Match match in Link().Matches(text))
                {
                    string target = match.Groups[1].Value;
                    if (target.Contains("://", StringComparison.Ordinal) || target.StartsWith("mailto:", StringComparison.Ordinal)) continue;
                    string[] parts = target.Split('#', 2);
                    string file = parts[0].Length == 0 ? document : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(document)!, parts[0]));
                    string where = $"{Path.GetRelativePath(Root, document)}:{number} links '{target}'";
                    if (!File.Exists(file) && !Directory.Exists(file)) broken.Add($"{where}, but that path does not exist");
                    else if (parts.Length == 2 && (!file.EndsWith(".md", StringComparison.Ordinal) || !Anchors(file).Contains(parts[1])))
                        broken.Add($"{where}, but that heading does not exist");
                }
        Assert.True(broken.Count == 0, string.Join("\n", broken));
    }

    [Fact]
    public void EverySeeInTheReadmeAndDocsProseIsALink()
    {
        var unlinked = new List<string>();
        foreach (string document in Documents())
            foreach ((int number, string text) in ProseLines(document))
                foreach (Match match in See().Matches(text))
                {
                    // The reference must start within a few words, before the clause ends.
                    string after = text[(match.Index + match.Length)..];
                    int clauseEnd = after.IndexOfAny(['.', ';', ')']);
                    int link = after.IndexOf('[', StringComparison.Ordinal);
                    bool linked = link >= 0 && link <= 30 && (clauseEnd < 0 || link < clauseEnd) && Link().IsMatch(after[link..]);
                    if (!linked) unlinked.Add($"{Path.GetRelativePath(Root, document)}:{number}: '{text.Trim()}'");
                }
        Assert.True(unlinked.Count == 0, "a 'see ...' without a link:\n" + string.Join("\n", unlinked));
    }

    [Fact]
    public async Task TheExampleTrainsTwoStepsOnAPlainImageFolder()
    {
        using var work = new TempDirectory("bagel-readme-example-");
        string images = work.Folder("images");
        for (int i = 0; i < 3; i++)
        {
            File.WriteAllBytes(Path.Combine(images, $"shape{i}.png"), PipelineFixture.Png(48 + 16 * i, 40, seed: i));
            File.WriteAllText(Path.Combine(images, $"shape{i}.txt"), $"a picture of shape {i}");
        }
        string results = Path.Combine(work.Path, "results");

        await ImageFolderTraining.RunAsync(images, tokenizerFolder: null, results, steps: 2, NullLoggerFactory.Instance, TestContext.Current.CancellationToken);

        Assert.NotEmpty(Directory.GetDirectories(Path.Combine(results, "checkpoints")));
    }
}
