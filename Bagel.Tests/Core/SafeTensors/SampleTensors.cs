using Bagel.Core.SafeTensors;
using TorchSharp;

namespace Bagel.Tests.Core.SafeTensors;

/// <summary>Small tensors with distinct, non-trivial values in every safetensors dtype.</summary>
internal static class SampleTensors
{
    public static torch.Tensor Make(SafeTensorDType dtype, params long[] shape)
    {
        long count = shape.Aggregate(1L, (a, b) => a * b);
        return dtype switch
        {
            SafeTensorDType.BOOL => torch.arange(count).remainder(3).eq(0).reshape(shape),
            SafeTensorDType.U8 => (torch.arange(count) * 7 + 3).remainder(256).to(torch.ScalarType.Byte).reshape(shape),
            SafeTensorDType.I8 or SafeTensorDType.I16 or SafeTensorDType.I32 or SafeTensorDType.I64 =>
                (torch.arange(count) * 37 - 50).to(dtype.ToScalarType()).reshape(shape),
            _ => torch.linspace(-3.3, 7.7, count).to(dtype.ToScalarType()).reshape(shape),
        };
    }

    public static byte[] Bytes(torch.Tensor tensor)
    {
        using var cpu = tensor.detach().cpu().contiguous();
        return cpu.bytes.ToArray();
    }
}
