using System.Text.Json;
using Bagel.Core.Batching;
using Bagel.Core.SafeTensors;
using Bagel.Core.StateDicts;
using Bagel.Tests.Models.FluxVae;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Bagel.Tests.Models.Bagel;

/// <summary>Reads Fixtures/FluxVae/generation_path.safetensors: the weights and recorded tensors of the reference's
/// generation branch of <c>Bagel.forward</c> (hidden 32, max_latent_size 4, 4 latent channels, 2×2 patches,
/// timestep_shift 3) and of its modeling_utils helpers.</summary>
internal static class GenerationPathFixture
{
    public const int HiddenSize = 32;
    public const int MaxLatentSize = 4;
    public const int LatentChannels = 4;
    public const int PatchSize = 2;

    public static Tensor Read(string name) => ReferenceFixtures.Read(ReferenceFixtures.GenerationPath, name);

    public static string Metadata(string key)
    {
        using SafeTensorsReader reader = SafeTensorsReader.Open(ReferenceFixtures.GenerationPath);
        return reader.Metadata[key];
    }

    /// <summary>The token grids of the two latent images, from the file's metadata.</summary>
    public static LatentGrid[] Grids()
    {
        using JsonDocument json = JsonDocument.Parse(Metadata("grids"));
        return [.. json.RootElement.EnumerateArray().Select(g => new LatentGrid(g[0].GetInt32(), g[1].GetInt32()))];
    }

    /// <summary>Loads the tensors under <paramref name="prefix"/> (e.g. "time_embedder.") into <paramref name="module"/>,
    /// strictly: every module key must come from the file.</summary>
    public static StateDictLoadReport LoadPrefixed(nn.Module module, string prefix) =>
        StateDictLoader.Load(module, ReferenceFixtures.GenerationPath, new StateDictLoadOptions
        {
            KeyMap = key => key.StartsWith(prefix, StringComparison.Ordinal) ? key[prefix.Length..] : null,
        }, TestContext.Current.CancellationToken);
}
