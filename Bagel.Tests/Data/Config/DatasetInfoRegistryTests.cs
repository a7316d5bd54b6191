using Bagel.Data.Config;
using Bagel.Tests.Infrastructure;

namespace Bagel.Tests.Data.Config;

public sealed class DatasetInfoRegistryTests
{
    [Fact]
    public void YamlRegistryResolvesRelativePathsAgainstItsFile()
    {
        using var dir = new TempDirectory();
        dir.Folder("data/t2i");
        dir.Folder("data/vlm/images");
        dir.File("data/vlm/conv.jsonl", "{}\n");
        string file = dir.File("conf/info.yaml", """
            t2i_pretrain:
              t2i:
                data_dir: ../data/t2i
                num_files: 10
                num_total_samples: 1000
            vlm_sft:
              llava_ov:
                data_dir: ../data/vlm/images
                jsonl_path: ../data/vlm/conv.jsonl
            """);

        var registry = DatasetInfoRegistry.Load(file);

        Assert.Equal(Path.Combine(dir.Path, "data", "t2i"), registry.Get("t2i_pretrain", "t2i").DataDir);
        Assert.Equal(10, registry.Get("t2i_pretrain", "t2i").NumFiles);
        Assert.Equal(Path.Combine(dir.Path, "data", "vlm", "conv.jsonl"), registry.Get("vlm_sft", "llava_ov").JsonlPath);
    }

    [Fact]
    public void JsonRegistryLoadsToo()
    {
        using var dir = new TempDirectory();
        dir.Folder("t2i");
        string file = dir.File("info.json", """{"t2i_pretrain": {"t2i": {"data_dir": "t2i"}}}""");
        Assert.True(DatasetInfoRegistry.Load(file).Contains("t2i_pretrain", "t2i"));
    }

    [Fact]
    public void EveryProblemIsReportedTogetherWithFileLineAndKey()
    {
        using var dir = new TempDirectory();
        dir.Folder("t2i");
        string file = dir.File("info.yaml", """
            t2i_pretrain:
              t2i:
                data_dir: t2i
                num_filez: 3
              missing:
                data_dir: nowhere
            unified_edit:
              e:
                data_dir: t2i
                json_dir: x
                parquet_info_path: absent.json
            mystery_group:
              x:
                data_dir: t2i
            """);

        var ex = Assert.Throws<DataConfigAggregateException>(() => DatasetInfoRegistry.Load(file));

        Assert.Equal(5, ex.Errors.Count);
        Assert.All(ex.Errors, e => Assert.Equal(file, e.FilePath));
        Assert.Contains(ex.Errors, e => e.KeyPath == "t2i_pretrain.t2i.num_filez" && e.Line == 4 && e.Message.Contains("unknown key", StringComparison.Ordinal));
        Assert.Contains(ex.Errors, e => e.KeyPath == "t2i_pretrain.missing.data_dir" && e.Message.Contains("does not exist", StringComparison.Ordinal));
        Assert.Contains(ex.Errors, e => e.KeyPath == "unified_edit.e.json_dir");
        Assert.Contains(ex.Errors, e => e.KeyPath == "unified_edit.e.parquet_info_path" && e.Message.Contains("parquet_info command", StringComparison.Ordinal));
        Assert.Contains(ex.Errors, e => e.KeyPath == "mystery_group" && e.Message.Contains("unknown group", StringComparison.Ordinal));
    }

    [Fact]
    public void VlmEntryNeedsJsonlPath()
    {
        using var dir = new TempDirectory();
        dir.Folder("img");
        string file = dir.File("info.yaml", "vlm_sft:\n  v:\n    data_dir: img\n");
        var ex = Assert.Throws<DataConfigException>(() => DatasetInfoRegistry.Load(file));
        Assert.Contains("'jsonl_path' is required", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CodeRegistrationValidatesPathsAndLookupNamesWhatExists()
    {
        using var dir = new TempDirectory();
        var registry = new DatasetInfoRegistry().Add("t2i_pretrain", "mine", new DatasetInfoEntry { DataDir = dir.Path });
        var missing = Assert.Throws<DataConfigException>(() => registry.Add("t2i_pretrain", "bad", new DatasetInfoEntry { DataDir = Path.Combine(dir.Path, "nope") }));
        Assert.Contains("t2i_pretrain.bad.data_dir", missing.Message, StringComparison.Ordinal);
        var unknown = Assert.Throws<DataConfigException>(() => registry.Get("t2i_pretrain", "other"));
        Assert.Contains("registered: mine", unknown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SyntaxErrorNamesTheLine()
    {
        using var dir = new TempDirectory();
        string file = dir.File("info.yaml", "t2i_pretrain:\n  t2i: {data_dir: [unclosed\n");
        var ex = Assert.Throws<DataConfigException>(() => DatasetInfoRegistry.Load(file));
        Assert.Contains("not valid YAML/JSON", ex.Message, StringComparison.Ordinal);
        Assert.NotNull(ex.Line);
    }
}
