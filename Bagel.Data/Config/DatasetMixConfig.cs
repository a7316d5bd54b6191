using Bagel.Data.Images;

namespace Bagel.Data.Config;

/// <summary>The model's limits on image sizes, checked at start-up (the reference only fails later with a device assert).</summary>
/// <param name="MaxLatentSize"><c>max_latent_size</c>: largest latent grid side (VAE images: side/16 must fit).</param>
/// <param name="VitMaxNumPatchPerSide"><c>vit_max_num_patch_per_side</c>: largest ViT patch grid side (side/14 must fit; 70).</param>
/// <param name="VaeImageDownsample">VAE downsample × latent patch size (16).</param>
/// <param name="VitPatchSize">ViT patch size (14).</param>
/// <param name="InterpolatePos"><c>interpolate_pos</c>: position ids are bucketed onto the grids, so images of any size
/// fit them and only the strides are checked (default false).</param>
public sealed record ModelImageLimits(int MaxLatentSize = 32, int VitMaxNumPatchPerSide = 70, int VaeImageDownsample = 16, int VitPatchSize = 14,
    bool InterpolatePos = false);

/// <summary>
/// The dataset mix: the reference's dataset YAML (<c>dataset_config_file</c>), one block per group with the same keys,
/// names and defaults (training.md 2.2). Unknown keys, missing required keys and impossible values are errors naming
/// the key, the line and the file, all reported at once.
/// </summary>
public sealed class DatasetMixConfig
{
    private static readonly string[] TransformKeys = ["image_stride", "max_image_size", "min_image_size", "max_pixels", "image_mean", "image_std"];
    private static readonly string[] FrameKeys = ["max_num_frames", "min_num_frames", "sample"];
    private static readonly string[] CommonKeys = ["dataset_names", "num_used_data", "weight", "is_mandatory", "image_transform_args", "resume_data_status"];

    /// <summary>Creates a mix from groups built in code.</summary>
    /// <param name="groups">The groups, in sampling order.</param>
    /// <param name="sourceFile">The file they came from, if any.</param>
    public DatasetMixConfig(IReadOnlyList<DatasetGroupConfig> groups, string? sourceFile = null)
    {
        Groups = groups;
        SourceFile = sourceFile;
    }

    /// <summary>The groups in file order (the order of the reference's cumulative weight table).</summary>
    public IReadOnlyList<DatasetGroupConfig> Groups { get; }

    /// <summary>The YAML file, if loaded from one.</summary>
    public string? SourceFile { get; }

    /// <summary>The keys a group of the given kind accepts.</summary>
    /// <param name="kind">A <see cref="DatasetGroupKinds"/> value.</param>
    /// <returns>The allowed keys.</returns>
    public static IReadOnlyList<string> AllowedKeys(string kind) => kind switch
    {
        DatasetGroupKinds.UnifiedEdit => [.. CommonKeys, "vit_image_transform_args"],
        DatasetGroupKinds.VlmSft => [.. CommonKeys, "frame_sampler_args", "shuffle_lines", "shuffle_seed"],
        _ => CommonKeys,
    };

    /// <summary>Loads and validates a dataset YAML against a registry.</summary>
    /// <param name="path">The YAML file.</param>
    /// <param name="registry">The dataset registry that <c>dataset_names</c> refer to.</param>
    /// <param name="extraGroupKinds">Group kinds registered by the application (they accept the common keys).</param>
    /// <returns>The validated configuration.</returns>
    /// <exception cref="DataConfigException">One problem.</exception>
    /// <exception cref="DataConfigAggregateException">Several problems.</exception>
    public static DatasetMixConfig Load(string path, DatasetInfoRegistry registry, IEnumerable<string>? extraGroupKinds = null)
    {
        ArgumentNullException.ThrowIfNull(registry);
        string file = Path.GetFullPath(path);
        ConfigNode root = ConfigNode.Load(file);
        var kinds = new HashSet<string>(DatasetGroupKinds.All.Concat(extraGroupKinds ?? []), StringComparer.Ordinal);
        var groups = new List<DatasetGroupConfig>();
        foreach (var (name, node) in root.Entries())
        {
            if (!kinds.Contains(name))
            {
                node.Error($"unknown dataset group; the top-level key must be a group kind: {string.Join(", ", kinds.Order(StringComparer.Ordinal))}.");
                continue;
            }
            if (ReadGroup(name, node, registry) is { } group) groups.Add(group);
        }
        if (root.Errors.Count == 0 && groups.Count == 0) root.Error("no dataset group is configured.");
        if (root.Errors.Count == 0 && groups.All(g => g.Weight == 0))
            root.Error("every group has weight 0, so none can be sampled; give at least one group a positive 'weight'.");
        if (root.Errors.Count == 1) throw root.Errors[0];
        if (root.Errors.Count > 1) throw new DataConfigAggregateException(root.Errors);
        return new DatasetMixConfig(groups, file);
    }

    /// <summary>
    /// Rejects image sizes the model cannot embed: a VAE image side over <c>16·max_latent_size</c> or a ViT image side
    /// over <c>14·vit_max_num_patch_per_side</c> would index past the position tables (the reference's issue #131).
    /// </summary>
    /// <param name="limits">The model's limits.</param>
    /// <param name="vitMainStreamGroups">Application-registered groups whose <c>image_transform_args</c> feed the ViT
    /// (as <c>vlm_sft</c>'s do); every other group's main transform is checked as a VAE stream.</param>
    /// <exception cref="DataConfigAggregateException">Every offending setting, each naming both values.</exception>
    public void ValidateAgainst(ModelImageLimits limits, IEnumerable<string>? vitMainStreamGroups = null)
    {
        ArgumentNullException.ThrowIfNull(limits);
        var vitGroups = new HashSet<string>(vitMainStreamGroups ?? [], StringComparer.Ordinal) { DatasetGroupKinds.VlmSft };
        var errors = new List<DataConfigException>();
        foreach (var group in Groups)
        {
            bool mainIsVit = vitGroups.Contains(group.Name);
            Check(group.ImageTransform, $"{group.Name}.image_transform_args", mainIsVit);
            if (group.VitImageTransform is { } vit) Check(vit, $"{group.Name}.vit_image_transform_args", true);
        }
        if (errors.Count > 0) throw new DataConfigAggregateException(errors);

        void Check(ImageTransformOptions args, string key, bool vit)
        {
            int stride = vit ? limits.VitPatchSize : limits.VaeImageDownsample;
            int limit = vit ? limits.VitMaxNumPatchPerSide : limits.MaxLatentSize;
            string limitName = vit ? "vit_max_num_patch_per_side" : "max_latent_size";
            if (args.ImageStride != stride)
            {
                errors.Add(new DataConfigException(SourceFile, key + ".image_stride", $"is {args.ImageStride}, but the {(vit ? "ViT" : "VAE")} stream needs stride {stride}."));
                return;
            }
            if (limits.InterpolatePos) return; // interpolated ids map any image size onto the grid
            try
            {
                args.EnsureFitsPositionGrid(limit, limitName);
            }
            catch (ArgumentException ex)
            {
                errors.Add(new DataConfigException(SourceFile, key + ".max_image_size", ex.Message));
            }
        }
    }

    private static DatasetGroupConfig? ReadGroup(string name, ConfigNode node, DatasetInfoRegistry registry)
    {
        node.RejectUnknownKeys(AllowedKeys(name), $"a '{name}' group");
        var names = Required(node, "dataset_names")?.Items().Select(n => n.String()).OfType<string>().ToList() ?? [];
        var used = Required(node, "num_used_data")?.Items().Select(n => n.Integer()).OfType<long>().ToList() ?? [];
        if (node.Child("dataset_names") is { } namesNode)
        {
            if (names.Count == 0) namesNode.Error("lists no dataset.");
            foreach (string dataset in names.Where(d => !registry.Contains(name, d)))
                namesNode.Error($"dataset '{dataset}' is not registered under '{name}' in the dataset registry ({registry.SourceFile ?? "configured in code"}).");
        }
        if (node.Child("num_used_data") is { } usedNode)
        {
            if (used.Count != names.Count)
                usedNode.Error($"has {used.Count} entries but dataset_names has {names.Count}; give one per dataset (the reference silently ignores extras).");
            foreach (long n in used.Where(n => n < 1)) usedNode.Error($"entries must be 1 or more, found {n}.");
        }
        double weight = node.Child("weight")?.Number() ?? 0.0;
        if (weight < 0) node.Child("weight")!.Error($"must be zero or more, found {weight}.");
        var transform = ReadTransform(Required(node, "image_transform_args"));
        var vitTransform = name == DatasetGroupKinds.UnifiedEdit ? ReadTransform(Required(node, "vit_image_transform_args")) : null;
        FrameSamplerArgs? frames = null;
        if (name == DatasetGroupKinds.VlmSft && Required(node, "frame_sampler_args") is { } f)
        {
            f.RejectUnknownKeys(FrameKeys, "frame_sampler_args");
            frames = new FrameSamplerArgs
            {
                MaxNumFrames = (int)(f.Child("max_num_frames")?.Integer() ?? -1),
                MinNumFrames = (int)(f.Child("min_num_frames")?.Integer() ?? 8),
                Sample = f.Child("sample")?.String() ?? "rand",
            };
        }
        if (transform is null) return null;
        return new DatasetGroupConfig
        {
            Name = name,
            DatasetNames = names,
            NumUsedData = used,
            Weight = weight,
            IsMandatory = node.Child("is_mandatory")?.Boolean() ?? false,
            ImageTransform = transform,
            VitImageTransform = vitTransform,
            FrameSampler = frames,
            ShuffleLines = node.Child("shuffle_lines")?.Boolean() ?? false,
            ShuffleSeed = (int)(node.Child("shuffle_seed")?.Integer() ?? 0),
            ResumeDataStatus = node.Child("resume_data_status")?.Boolean() ?? true,
        };
    }

    private static ConfigNode? Required(ConfigNode node, string key)
    {
        var child = node.Child(key);
        if (child is null && node.IsMapping) node.Error($"'{key}' is required for this group.", key);
        return child;
    }

    private static ImageTransformOptions? ReadTransform(ConfigNode? node)
    {
        if (node is null) return null;
        node.RejectUnknownKeys(TransformKeys, node.Path);
        int? Positive(string key)
        {
            var child = Required(node, key);
            long? value = child?.Integer();
            if (value is < 1) child!.Error($"must be 1 or more, found {value}.");
            return value is >= 1 ? (int)value : null;
        }
        int? stride = Positive("image_stride"), max = Positive("max_image_size"), min = Positive("min_image_size");
        long maxPixels = node.Child("max_pixels")?.Integer() ?? ImageTransformOptions.ReferenceMaxPixels;
        if (maxPixels is < 1 or > int.MaxValue) node.Child("max_pixels")!.Error($"must be between 1 and {int.MaxValue}, found {maxPixels}.");
        IReadOnlyList<float> Triple(string key)
        {
            if (node.Child(key) is not { } child) return [0.5f, 0.5f, 0.5f];
            var values = child.Items().Select(i => i.Number()).OfType<double>().Select(v => (float)v).ToList();
            if (values.Count != 3) child.Error($"needs 3 numbers (one per RGB channel), found {values.Count}.");
            if (key == "image_std" && values.Any(v => v <= 0)) child.Error("every std must be positive.");
            return values.Count == 3 ? values : [0.5f, 0.5f, 0.5f];
        }
        IReadOnlyList<float> mean = Triple("image_mean"), std = Triple("image_std");
        if (stride is null || max is null || min is null || maxPixels is < 1 or > int.MaxValue) return null;
        return new ImageTransformOptions
        {
            ImageStride = stride.Value,
            MaxImageSize = max.Value,
            MinImageSize = min.Value,
            MaxPixels = (int)maxPixels,
            ImageMean = mean,
            ImageStd = std,
        };
    }
}
