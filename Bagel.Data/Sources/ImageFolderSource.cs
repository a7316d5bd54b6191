using Bagel.Core.DataStatus;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Bagel.Data.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Bagel.Data.Sources;

/// <summary>
/// A plain image folder for text-to-image training without parquet: every image file (png, jpg, jpeg, webp, gif, bmp;
/// searched recursively) with its caption in a <c>.txt</c> file of the same name beside it, or in a captions JSONL whose
/// lines are <c>{"file_name": "relative/path.png", "caption": "..."}</c>. An image without a caption is a counted skip.
/// The sharding unit is the image. Position: <c>[image index in the worker slice]</c>.
/// </summary>
public sealed class ImageFolderSource : RawSampleSource
{
    /// <summary>The image file extensions listed.</summary>
    public static readonly IReadOnlySet<string> ImageExtensions = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { ".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp" };

    private readonly List<string> _images;
    private readonly Dictionary<string, string>? _captions;

    /// <summary>Creates the source.</summary>
    /// <param name="group">The group name.</param>
    /// <param name="folder">The image folder.</param>
    /// <param name="captionsJsonl">The captions JSONL, or null to read <c>.txt</c> files beside the images.</param>
    /// <param name="numUsedData">Images taken (in sorted order), or null for all.</param>
    /// <param name="logger">For messages.</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidDataException">The folder holds no file with an accepted extension; the message names it.</exception>
    public ImageFolderSource(string group, string folder, string? captionsJsonl = null, long? numUsedData = null, ILogger? logger = null)
        : base(group, logger)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Image folder '{folder}' of group '{group}' does not exist.");
        _images = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Where(f => ImageExtensions.Contains(Path.GetExtension(f))).Order(StringComparer.Ordinal).ToList();
        if (_images.Count == 0)
            throw new InvalidDataException(
                $"Image folder '{Path.GetFullPath(folder)}' of group '{group}' holds no images: no file (searched recursively) has an accepted extension " +
                $"({string.Join(", ", ImageExtensions.Order(StringComparer.Ordinal))}).");
        if (numUsedData is { } n) _images = _images.Take((int)Math.Min(n, _images.Count)).ToList();
        if (captionsJsonl is not null) _captions = ReadCaptions(captionsJsonl, folder);
    }

    /// <inheritdoc />
    public override SourcePositionKind PositionKind => SourcePositionKind.ImageFolder;

    /// <inheritdoc />
    public override int UnitCount => _images.Count;

    /// <inheritdoc />
    protected override object ShardUnits(WorkerSlice slice, Func<int, int> randomBelow) =>
        UnitSharding.Slice(_images, StringComparer.Ordinal, randomBelow, slice, Group);

    /// <inheritdoc />
    protected override async IAsyncEnumerable<RawSample> ReadPassAsync(object units, WorkerSlice slice, IReadOnlyList<long>? resumeAfter, DataSkipCounters skips,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var workerImages = (IReadOnlyList<string>)units;
        for (int index = resumeAfter is null ? 0 : (int)resumeAfter[0] + 1; index < workerImages.Count; index++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            string image = workerImages[index];
            string? caption;
            if (_captions is not null)
            {
                _captions.TryGetValue(Path.GetFullPath(image), out caption);
            }
            else
            {
                string txt = Path.ChangeExtension(image, ".txt");
                caption = File.Exists(txt) ? (await File.ReadAllTextAsync(txt, cancellationToken).ConfigureAwait(false)).Trim() : null;
            }
            if (caption is null)
            {
                skips.Skip(Group, SkipReason.MissingCaption, image, "no caption (.txt beside the image, or captions JSONL entry).");
                continue;
            }
            yield return new RawSample(new SampleDataIndex(Group, slice.Worker, new SourcePosition(SourcePositionKind.ImageFolder, [index])), image, new ImageFolderPayload(image, caption));
        }
    }

    private static Dictionary<string, string> ReadCaptions(string jsonl, string folder)
    {
        var captions = new Dictionary<string, string>(StringComparer.Ordinal);
        long number = 0;
        foreach (string line in File.ReadLines(jsonl))
        {
            number++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                using var doc = JsonDocument.Parse(line);
                string file = doc.RootElement.GetProperty("file_name").GetString() ?? throw new FormatException("file_name is null");
                string caption = doc.RootElement.GetProperty("caption").GetString() ?? throw new FormatException("caption is null");
                captions[Path.GetFullPath(Path.Combine(folder, file))] = caption;
            }
            catch (Exception ex) when (ex is JsonException or KeyNotFoundException or FormatException or InvalidOperationException)
            {
                throw new FormatException($"{jsonl} line {number}: expected {{\"file_name\": ..., \"caption\": ...}}: {ex.Message}", ex);
            }
        }
        return captions;
    }
}
