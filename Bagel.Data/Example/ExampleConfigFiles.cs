using System.Text;
using Bagel.Data.Config;

namespace Bagel.Data.Example;

/// <summary>
/// The text of the generated <c>dataset_info.yaml</c> (registry, relative paths) and <c>example.yaml</c> (mix: the
/// reference's keys, with weights and <c>is_mandatory</c> as in its example and image sizes from the options).
/// </summary>
internal static class ExampleConfigFiles
{
    public static string DatasetInfo(ExampleDataOptions options)
    {
        var yaml = new StringBuilder();
        yaml.Append("# Dataset registry (the reference's DATASET_INFO). Paths are relative to this file's folder.\n");
        Line(yaml, 0, $"{DatasetGroupKinds.T2IPretrain}:");
        Line(yaml, 1, $"{ExampleDataLayout.T2IDatasetName}:");
        Line(yaml, 2, $"data_dir: {ExampleDataLayout.T2IFolder}");
        Line(yaml, 2, $"num_files: {options.T2IFiles}");
        Line(yaml, 2, $"num_total_samples: {(long)options.T2IFiles * options.T2IRowsPerFile}");
        Line(yaml, 0, $"{DatasetGroupKinds.UnifiedEdit}:");
        Line(yaml, 1, $"{ExampleDataLayout.EditDatasetName}:");
        Line(yaml, 2, $"data_dir: {ExampleDataLayout.EditFolder}");
        Line(yaml, 2, $"num_files: {options.EditFiles}");
        Line(yaml, 2, $"num_total_samples: {(long)options.EditFiles * options.EditRowsPerFile}");
        Line(yaml, 2, $"parquet_info_path: {ExampleDataLayout.EditParquetInfo}");
        Line(yaml, 0, $"{DatasetGroupKinds.VlmSft}:");
        Line(yaml, 1, $"{ExampleDataLayout.VlmDatasetName}:");
        Line(yaml, 2, $"data_dir: {ExampleDataLayout.VlmImagesFolder}");
        Line(yaml, 2, $"jsonl_path: {ExampleDataLayout.VlmJsonl}");
        Line(yaml, 2, $"num_total_samples: {options.VlmLines}");
        return yaml.ToString();
    }

    public static string Mix(ExampleDataOptions options)
    {
        var yaml = new StringBuilder();
        yaml.Append("# Dataset mix (the reference's data/configs/example.yaml keys). num_used_data counts files for T2I and edit,\n");
        yaml.Append("# lines for VLM; its sum per group must exceed ranks x data workers.\n");
        Group(yaml, DatasetGroupKinds.T2IPretrain, ExampleDataLayout.T2IDatasetName, options.VaeTransform, mandatory: true, options.T2IFiles);
        yaml.Append('\n');
        Group(yaml, DatasetGroupKinds.UnifiedEdit, ExampleDataLayout.EditDatasetName, options.VaeTransform, mandatory: false, options.EditFiles,
              extra: y => Transform(y, "vit_image_transform_args", options.VitTransform, maxPixels: null));
        yaml.Append('\n');
        // The reference's VLM block caps pixels at 2,007,040 (= 14·14·10240, i.e. 10,240 patches); kept as is.
        Group(yaml, DatasetGroupKinds.VlmSft, ExampleDataLayout.VlmDatasetName, options.VitTransform, mandatory: true, options.VlmLines,
              maxPixels: 2_007_040, extra: y =>
              {
                  Line(y, 1, "frame_sampler_args:");
                  Line(y, 2, "max_num_frames: 12");
                  Line(y, 2, "min_num_frames: 8");
                  Line(y, 1, "shuffle_lines: true");
                  Line(y, 1, "shuffle_seed: 0");
              });
        return yaml.ToString();
    }

    private static void Group(StringBuilder yaml, string group, string dataset, ExampleTransformSizes transform, bool mandatory, long numUsed,
        long? maxPixels = null, Action<StringBuilder>? extra = null)
    {
        Line(yaml, 0, $"{group}:");
        Line(yaml, 1, "dataset_names:");
        Line(yaml, 1, $"- {dataset}");
        Transform(yaml, "image_transform_args", transform, maxPixels);
        extra?.Invoke(yaml);
        Line(yaml, 1, $"is_mandatory: {(mandatory ? "true" : "false")}");
        Line(yaml, 1, "num_used_data:");
        Line(yaml, 1, $"- {numUsed}");
        Line(yaml, 1, "weight: 1");
    }

    private static void Transform(StringBuilder yaml, string key, ExampleTransformSizes sizes, long? maxPixels)
    {
        Line(yaml, 1, $"{key}:");
        Line(yaml, 2, $"image_stride: {sizes.ImageStride}");
        Line(yaml, 2, $"max_image_size: {sizes.MaxImageSize}");
        Line(yaml, 2, $"min_image_size: {sizes.MinImageSize}");
        if (maxPixels is { } pixels) Line(yaml, 2, $"max_pixels: {pixels}");
    }

    // Only positive integers are formatted, which read the same in every culture.
    private static void Line(StringBuilder yaml, int depth, string text) => yaml.Append(' ', 2 * depth).Append(text).Append('\n');
}
