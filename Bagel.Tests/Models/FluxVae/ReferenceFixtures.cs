using System.Text.Json;
using Bagel.Core.SafeTensors;
using Bagel.Models.FluxVae;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Bagel.Tests.Models.FluxVae;

/// <summary>The committed reference fixtures of Bagel.Tests/Fixtures/FluxVae (see its README) and the comparison
/// the tests use.</summary>
internal static class ReferenceFixtures
{
    public static string Directory { get; } = Path.Combine(SharedData.RepositoryRoot, "Bagel.Tests", "Fixtures", "FluxVae");

    /// <summary>The tiny autoencoder's weights (F16 values, reference names).</summary>
    public static string TinyWeights => Path.Combine(Directory, "ae_tiny.safetensors");

    /// <summary>Inputs and outputs of the reference's tiny autoencoder.</summary>
    public static string TinyIo => Path.Combine(Directory, "vae_tiny_io.safetensors");

    /// <summary>Weights and tensors of the reference's generation-path helpers.</summary>
    public static string GenerationPath => Path.Combine(Directory, "generation_path.safetensors");

    /// <summary>Relative tolerance for float32 CPU comparisons (convolutions, attention, GEMMs).</summary>
    public const double Float32Tolerance = 1e-5;

    /// <summary>The tiny configuration, read from the weights file's metadata (written by make_fixtures.py).</summary>
    public static FluxVaeConfig TinyConfig()
    {
        using SafeTensorsReader reader = SafeTensorsReader.Open(TinyWeights);
        using JsonDocument json = JsonDocument.Parse(reader.Metadata["config"]);
        JsonElement c = json.RootElement;
        return new FluxVaeConfig(
            c.GetProperty("in_channels").GetInt32(), c.GetProperty("ch").GetInt32(), c.GetProperty("out_ch").GetInt32(),
            [.. c.GetProperty("ch_mult").EnumerateArray().Select(e => e.GetInt32())], c.GetProperty("num_res_blocks").GetInt32(),
            c.GetProperty("z_channels").GetInt32(), c.GetProperty("scale_factor").GetDouble(), c.GetProperty("shift_factor").GetDouble());
    }

    /// <summary>The tiny autoencoder with the reference's weights.</summary>
    public static FluxAutoEncoder LoadTinyVae() =>
        FluxAutoEncoder.Load(TinyWeights, TinyConfig(), cancellationToken: TestContext.Current.CancellationToken);

    /// <summary>Reads a tensor of a fixture file.</summary>
    public static Tensor Read(string file, string name)
    {
        using SafeTensorsReader reader = SafeTensorsReader.Open(file);
        return reader.ReadTensor(name);
    }

    /// <summary>Asserts equal shapes and max|actual − expected| ≤ tolerance · max|expected|; returns the measured
    /// relative error.</summary>
    public static double AssertClose(Tensor expected, Tensor actual, double tolerance, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        using var scope = NewDisposeScope();
        Tensor e = expected.to(ScalarType.Float64), a = actual.to(ScalarType.Float64);
        double scale = e.abs().max().item<double>();
        double error = (a - e).abs().max().item<double>() / Math.Max(scale, double.Epsilon);
        TestContext.Current.TestOutputHelper?.WriteLine($"{what}: max relative error {error:E3}");
        Assert.True(error <= tolerance, $"{what}: max relative error {error:E3} exceeds {tolerance:E1} (scale {scale:G4}).");
        return error;
    }
}
