using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Bagel.Data.Config;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Parquet;
using Parquet.Serialization;

namespace Bagel.Data.Example;

/// <summary>
/// Writes a synthetic dataset in the reference's <c>bagel_example</c> layout (<see cref="ExampleDataLayout"/>):
/// T2I and editing parquet shards, the editing parquet_info, a VLM JSONL with its picture files, and a ready
/// <c>dataset_info.yaml</c> + <c>example.yaml</c>. Pictures are single coloured shapes on plain backgrounds whose
/// captions, edit instructions and answers describe them, so a tiny model can learn from them. The output is a
/// function of the options alone (same seed, byte-identical files). Everything is written into a temporary sibling
/// folder that is renamed at the end, so a cancelled or failed write never leaves a half dataset under the final name.
/// </summary>
public sealed class ExampleDataWriter
{
    // Keep '<image>' and non-ASCII readable in the JSONL and captions, as the reference's files are (still valid JSON).
    private static readonly JsonSerializerOptions PlainJson = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly ILogger _logger;

    /// <summary>Creates the writer; the options are validated here.</summary>
    /// <param name="options">What to write.</param>
    /// <param name="logger">Receives a start and a summary line (default: none).</param>
    /// <exception cref="DataConfigException">A bad option, naming it.</exception>
    /// <exception cref="DataConfigAggregateException">Several bad options.</exception>
    public ExampleDataWriter(ExampleDataOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>The validated options.</summary>
    public ExampleDataOptions Options { get; }

    /// <summary>Writes the dataset.</summary>
    /// <param name="progress">Told after each file (called on the writing thread).</param>
    /// <param name="cancellationToken">Stops the write; the temporary folder is then removed.</param>
    /// <returns>What was written.</returns>
    /// <exception cref="DataConfigException">The output folder exists and <see cref="ExampleDataOptions.Overwrite"/> is off.</exception>
    public async Task<ExampleDataSummary> WriteAsync(IProgress<ExampleDataProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        string final = Path.GetFullPath(Options.OutputFolder);
        if ((Directory.Exists(final) || File.Exists(final)) && !Options.Overwrite)
            throw new DataConfigException(null, $"{nameof(ExampleDataOptions)}.{nameof(ExampleDataOptions.OutputFolder)}",
                $"'{final}' already exists; choose another folder or set Overwrite (--force) to replace it.");
        string parent = Path.GetDirectoryName(final) ?? throw new DataConfigException(null, nameof(ExampleDataOptions.OutputFolder), $"'{final}' has no parent folder.");
        bool createdParent = !Directory.Exists(parent);
        Directory.CreateDirectory(parent);
        bool published = false;
        // A sibling, so the final rename stays on one file system and is atomic.
        string temp = Path.Combine(parent, $".{Path.GetFileName(final)}.partial-{Environment.ProcessId}-{Guid.NewGuid():N}");
        var clock = Stopwatch.StartNew();
        ExampleDataLog.Started(_logger, final, Options.Seed, TotalFiles(Options));
        try
        {
            Directory.CreateDirectory(temp);
            var run = new Run(Options, temp, progress, cancellationToken);
            long t2iRows = await WriteT2IAsync(run).ConfigureAwait(false);
            (long editRows, long editImages) = await WriteEditAsync(run).ConfigureAwait(false);
            long vlmLines = await WriteVlmAsync(run).ConfigureAwait(false);
            await run.WriteTextAsync(ExampleDataLayout.DatasetInfoFile, ExampleConfigFiles.DatasetInfo(Options)).ConfigureAwait(false);
            await run.WriteTextAsync(ExampleDataLayout.MixConfigFile, ExampleConfigFiles.Mix(Options)).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            Publish(temp, final);
            published = true;
            var summary = new ExampleDataSummary(final, Path.Combine(final, ExampleDataLayout.DatasetInfoFile), Path.Combine(final, ExampleDataLayout.MixConfigFile),
                t2iRows, editRows, editImages, vlmLines, run.Files, run.Bytes);
            ExampleDataLog.Finished(_logger, final, summary.Files, summary.Bytes / (1024.0 * 1024.0), clock.Elapsed.TotalSeconds);
            return summary;
        }
        finally
        {
            if (Directory.Exists(temp)) TryDelete(temp);
            // A failed write also removes the parent folder it created, when nothing else went there meanwhile.
            if (!published && createdParent && Directory.Exists(parent) && !Directory.EnumerateFileSystemEntries(parent).Any()) TryDelete(parent);
        }
    }

    /// <summary>The number of files a write with these options produces.</summary>
    /// <param name="options">The options.</param>
    /// <returns>Shards + parquet_info + VLM pictures + JSONL + the two YAML files.</returns>
    public static int TotalFiles(ExampleDataOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.T2IFiles + options.EditFiles + 1 + options.VlmLines + 1 + 2;
    }

    private static async Task<long> WriteT2IAsync(Run run)
    {
        var o = run.Options;
        for (int file = 0; file < o.T2IFiles; file++)
        {
            string relative = $"{ExampleDataLayout.T2IFolder}/{ExampleDataLayout.ShardName(file)}";
            long first = (long)file * o.T2IRowsPerFile;
            await run.WriteParquetAsync(relative, o.T2IRowsPerFile, o.T2IRowsPerRowGroup, row =>
            {
                ExampleScene scene = T2IScene(o, first + row);
                var captions = new JsonObject { ["short"] = scene.ShortCaption, ["long"] = scene.LongCaption };
                return new T2IRow { Image = run.Encode(scene, o.T2IImageFormat, ExampleStream.T2I, first + row, 0), Captions = captions.ToJsonString(PlainJson) };
            }).ConfigureAwait(false);
        }
        return (long)o.T2IFiles * o.T2IRowsPerFile;
    }

    private static async Task<(long Rows, long Images)> WriteEditAsync(Run run)
    {
        var o = run.Options;
        long images = 0;
        for (int file = 0; file < o.EditFiles; file++)
        {
            string relative = $"{ExampleDataLayout.EditFolder}/{ExampleDataLayout.ShardName(file)}";
            long first = (long)file * o.EditRowsPerFile;
            await run.WriteParquetAsync(relative, o.EditRowsPerFile, o.EditRowsPerRowGroup, row =>
            {
                (List<ExampleScene> scenes, List<List<string>> instructions) = EditChain(o, first + row);
                var pictures = new List<byte[]>(scenes.Count);
                for (int step = 0; step < scenes.Count; step++)
                    pictures.Add(run.Encode(scenes[step], o.EditImageFormat, ExampleStream.Edit, first + row, step));
                Interlocked.Add(ref images, scenes.Count);
                return new EditRow { ImageList = pictures, InstructionList = instructions };
            }).ConfigureAwait(false);
        }
        await ParquetInfo.WriteForFolderAsync(Path.Combine(run.Root, ExampleDataLayout.EditFolder), Path.Combine(run.Root, ExampleDataLayout.EditParquetInfo),
            relativeKeys: true, run.CancellationToken).ConfigureAwait(false);
        run.Finished(ExampleDataLayout.EditParquetInfo);
        return ((long)o.EditFiles * o.EditRowsPerFile, images);
    }

    private static async Task<long> WriteVlmAsync(Run run)
    {
        var o = run.Options;
        string extension = o.VlmImageFormat == ExampleImageFormat.Png ? "png" : "jpg";
        Directory.CreateDirectory(Path.Combine(run.Root, ExampleDataLayout.VlmImagesFolder));
        var lines = new string[o.VlmLines];
        // In batches, so progress and cancellation come often and only a batch of pictures is in memory.
        int batch = Math.Max(1, o.MaxDegreeOfParallelism * 4);
        for (int start = 0; start < o.VlmLines; start += batch)
        {
            int count = Math.Min(batch, o.VlmLines - start);
            var pictures = new byte[count][];
            Parallel.For(0, count, run.Parallel, i =>
            {
                int line = start + i;
                (ExampleScene scene, List<(string From, string Value)> turns) = VlmConversation(o, line);
                string name = $"{line:D6}.{extension}";
                lines[line] = ConversationLine(line, name, turns);
                pictures[i] = run.Encode(scene, o.VlmImageFormat, ExampleStream.Vlm, line, 0);
            });
            for (int i = 0; i < count; i++)
                await run.WriteBytesAsync($"{ExampleDataLayout.VlmImagesFolder}/{start + i:D6}.{extension}", pictures[i]).ConfigureAwait(false);
        }
        await run.WriteTextAsync(ExampleDataLayout.VlmJsonl, string.Concat(lines.Select(l => l + "\n"))).ConfigureAwait(false);
        return o.VlmLines;
    }

    /// <summary>
    /// Every text the dataset written with <see cref="Options"/> holds, without writing anything: both captions of each
    /// T2I row, each edit instruction wording, each VLM conversation turn (with its <c>&lt;image&gt;</c> tag), in file order.
    /// It draws exactly what <see cref="WriteAsync"/> writes, so it serves as a tokenizer-training corpus for the data.
    /// </summary>
    public IEnumerable<string> EnumerateTexts()
    {
        ExampleDataOptions o = Options;
        for (long row = 0; row < (long)o.T2IFiles * o.T2IRowsPerFile; row++)
        {
            ExampleScene scene = T2IScene(o, row);
            yield return scene.ShortCaption;
            yield return scene.LongCaption;
        }
        for (long row = 0; row < (long)o.EditFiles * o.EditRowsPerFile; row++)
            foreach (List<string> wordings in EditChain(o, row).Instructions)
                foreach (string wording in wordings) yield return wording;
        for (int line = 0; line < o.VlmLines; line++)
            foreach ((string _, string value) in VlmConversation(o, line).Turns) yield return value;
    }

    private static ExampleScene T2IScene(ExampleDataOptions o, long row)
    {
        var random = new ExampleRandom(o.Seed, ExampleStream.T2I, row);
        return ExampleScene.Random(ref random, o.MinImageSide, o.MaxImageSide);
    }

    /// <summary>The scenes of one edit chain (2 to EditMaxChainLength) and the wordings of each edit between them.</summary>
    private static (List<ExampleScene> Scenes, List<List<string>> Instructions) EditChain(ExampleDataOptions o, long row)
    {
        var random = new ExampleRandom(o.Seed, ExampleStream.Edit, row);
        var scene = ExampleScene.Random(ref random, o.MinImageSide, o.MaxImageSide);
        int length = random.Between(2, o.EditMaxChainLength);
        var scenes = new List<ExampleScene> { scene };
        var instructions = new List<List<string>>();
        for (int step = 1; step < length; step++)
        {
            (scene, var wordings) = scene.RandomEdit(ref random);
            scenes.Add(scene);
            instructions.Add([.. wordings]);
        }
        return (scenes, instructions);
    }

    /// <summary>The picture and the conversation turns of one VLM line.</summary>
    private static (ExampleScene Scene, List<(string From, string Value)> Turns) VlmConversation(ExampleDataOptions o, int line)
    {
        var random = new ExampleRandom(o.Seed, ExampleStream.Vlm, line);
        var scene = ExampleScene.Random(ref random, o.MinImageSide, o.MaxImageSide);
        int firstKind = random.Below(ExampleScene.QuestionKinds);
        var (question, answer) = scene.Question(firstKind);
        var turns = new List<(string From, string Value)> { ("human", "<image>\n" + question), ("gpt", answer) };
        // A third of the lines have a follow-up turn (no image tag), as multi-turn LLaVA conversations do.
        if (random.Below(3) == 0)
        {
            var (followUp, followAnswer) = scene.Question((firstKind + 1 + random.Below(ExampleScene.QuestionKinds - 1)) % ExampleScene.QuestionKinds);
            turns.Add(("human", followUp));
            turns.Add(("gpt", followAnswer));
        }
        return (scene, turns);
    }

    private static string ConversationLine(int line, string imageName, List<(string From, string Value)> turns)
    {
        var conversations = new JsonArray();
        foreach ((string from, string value) in turns) conversations.Add(new JsonObject { ["from"] = from, ["value"] = value });
        return new JsonObject { ["id"] = $"bagel-example-{line:D6}", ["image"] = imageName, ["conversations"] = conversations }.ToJsonString(PlainJson);
    }

    private static void Publish(string temp, string final)
    {
        if (!Directory.Exists(final) && !File.Exists(final))
        {
            Directory.Move(temp, final);
            return;
        }
        // Overwrite: move the old dataset aside first, so the final name never holds a mixture of the two.
        string old = temp.Replace(".partial-", ".old-", StringComparison.Ordinal);
        if (File.Exists(final)) File.Move(final, old);
        else Directory.Move(final, old);
        Directory.Move(temp, final);
        if (Directory.Exists(old)) TryDelete(old);
        else File.Delete(old);
    }

    private static void TryDelete(string folder)
    {
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover dot-folder beside the dataset is harmless and named after it.
        }
    }

    /// <summary>One write's state: its folder, counters and shared settings.</summary>
    private sealed class Run(ExampleDataOptions options, string root, IProgress<ExampleDataProgress>? progress, CancellationToken cancellationToken)
    {
        private readonly int _total = TotalFiles(options);

        public ExampleDataOptions Options { get; } = options;

        public string Root { get; } = root;

        public CancellationToken CancellationToken { get; } = cancellationToken;

        public ParallelOptions Parallel { get; } = new() { MaxDegreeOfParallelism = options.MaxDegreeOfParallelism, CancellationToken = cancellationToken };

        public int Files { get; private set; }

        public long Bytes { get; private set; }

        public byte[] Encode(ExampleScene scene, ExampleImageFormat format, ExampleStream stream, long row, int step) =>
            ExampleSceneRenderer.Encode(scene, format, Options.JpegQuality, Options.NoiseAmplitude,
                                        new ExampleRandom(Options.Seed, ExampleStream.Noise, ((long)stream << 56) ^ (row << 8) ^ step));

        /// <summary>Writes a parquet file one row group at a time (only one row group of pictures is in memory).</summary>
        public async Task WriteParquetAsync<TRow>(string relative, int rows, int rowsPerGroup, Func<int, TRow> makeRow)
        {
            string path = Full(relative);
            await using (var stream = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite))
            {
                for (int start = 0, group = 0; start < rows; start += rowsPerGroup, group++)
                {
                    var groupRows = new TRow[Math.Min(rowsPerGroup, rows - start)];
                    int first = start;
                    System.Threading.Tasks.Parallel.For(0, groupRows.Length, Parallel, i => groupRows[i] = makeRow(first + i));
                    var parquet = new ParquetOptions { Append = group > 0, RowGroupSize = groupRows.Length };
                    await ParquetSerializer.SerializeAsync(groupRows, stream, parquet, cancellationToken: CancellationToken).ConfigureAwait(false);
                }
            }
            Finished(relative);
        }

        public async Task WriteBytesAsync(string relative, byte[] bytes)
        {
            await File.WriteAllBytesAsync(Full(relative), bytes, CancellationToken).ConfigureAwait(false);
            Finished(relative);
        }

        public async Task WriteTextAsync(string relative, string text)
        {
            await File.WriteAllTextAsync(Full(relative), text, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), CancellationToken).ConfigureAwait(false);
            Finished(relative);
        }

        public void Finished(string relative)
        {
            CancellationToken.ThrowIfCancellationRequested();
            Files++;
            Bytes += new FileInfo(Full(relative)).Length;
            progress?.Report(new ExampleDataProgress(Files, _total, relative));
        }

        private string Full(string relative)
        {
            string path = Path.Combine(Root, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            return path;
        }
    }

    /// <summary>A T2I parquet row (column names as the reference reads them).</summary>
    private sealed class T2IRow
    {
        [JsonPropertyName("image")]
        public byte[]? Image { get; set; }

        [JsonPropertyName("captions")]
        public string? Captions { get; set; }
    }

    /// <summary>An editing parquet row.</summary>
    private sealed class EditRow
    {
        [JsonPropertyName("image_list")]
        public List<byte[]>? ImageList { get; set; }

        [JsonPropertyName("instruction_list")]
        public List<List<string>>? InstructionList { get; set; }
    }
}
