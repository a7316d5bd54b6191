using System.Globalization;
using Bagel.Core.SafeTensors;
using Bagel.Models.FluxVae;

namespace Bagel.Training.Recipes;

/// <summary>
/// Reads a FLUX autoencoder's shape from the tensor shapes in its safetensors header, so that <c>vae_path</c> may name
/// the released <c>ae.safetensors</c> (giving <see cref="FluxVaeConfig.Flux"/>) or any smaller autoencoder of the same
/// layout. The reference always builds the FLUX shape; reading it from the file is ours. The latent scale and shift are
/// not stored in the file and keep FLUX's values.
/// </summary>
public static class FluxVaeShape
{
    /// <summary>Infers the configuration of the autoencoder stored at <paramref name="path"/>.</summary>
    /// <exception cref="FluxVaeException">The file lacks the tensors that give the shape; the message names them.</exception>
    public static FluxVaeConfig Infer(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using ISafeTensorsSource source = SafeTensorsCheckpoint.Open(path);
        Dictionary<string, IReadOnlyList<long>> shapes = source.Tensors.ToDictionary(t => t.Name, t => t.Shape, StringComparer.Ordinal);
        IReadOnlyList<long> Required(string key) => shapes.TryGetValue(key, out IReadOnlyList<long>? shape) && shape.Count == 4
            ? shape
            : throw new FluxVaeException($"{source.Location} has no 4-D '{key}', so it is not a FLUX autoencoder (encoder.*, decoder.*) whose shape can be read.");

        IReadOnlyList<long> convIn = Required("encoder.conv_in.weight");
        int ch = checked((int)convIn[0]);
        var multipliers = new List<int>();
        for (int level = 0; shapes.ContainsKey(Conv2(level, 0)); level++)
            multipliers.Add(checked((int)(Required(Conv2(level, 0))[0] / ch)));
        if (multipliers.Count == 0) throw new FluxVaeException($"{source.Location} has no '{Conv2(0, 0)}', so its levels cannot be read.");
        int blocks = 0;
        while (shapes.ContainsKey(Conv2(0, blocks))) blocks++;
        int z = checked((int)(Required("encoder.conv_out.weight")[0] / 2));
        int outChannels = checked((int)Required("decoder.conv_out.weight")[0]);
        FluxVaeConfig flux = FluxVaeConfig.Flux;
        return new FluxVaeConfig(checked((int)convIn[1]), ch, outChannels, multipliers, blocks, z, flux.ScaleFactor, flux.ShiftFactor);
    }

    private static string Conv2(int level, int block) =>
        string.Create(CultureInfo.InvariantCulture, $"encoder.down.{level}.block.{block}.conv2.weight");
}
