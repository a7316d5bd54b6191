using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using DeviceType = TorchSharp.DeviceType;

namespace Bagel.Training.Optimization;

/// <summary>
/// The storage arithmetic of the flat-buffer optimizer and the fused EMA: whether a tensor is a given slice of a flat
/// buffer, and whether consecutive tensors lie end to end in one storage. Works on any device: it compares the
/// storages' base addresses (libtorch's <c>storage().data_ptr()</c>, bound from LibTorchSharp) and the element offsets.
/// </summary>
internal static class FlatLayout
{
    private static bool s_nativeUnavailable;

    [DllImport("LibTorchSharp", EntryPoint = "THSStorage_data_ptr")]
    private static extern IntPtr StorageDataPointer(IntPtr tensor);

    /// <summary>
    /// True when <paramref name="a"/> and <paramref name="b"/> view one storage. Compares the storages' base addresses;
    /// when the native entry point cannot be bound, the CPU compares the addresses of the storages' first elements as
    /// seen through each tensor, and other devices assume true (only the offsets are then checked).
    /// </summary>
    public static bool SameStorage(torch.Tensor a, torch.Tensor b)
    {
        if (!s_nativeUnavailable)
        {
            try
            {
                return StorageDataPointer(a.Handle) == StorageDataPointer(b.Handle);
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                s_nativeUnavailable = true;
            }
        }
        if (a.device_type != DeviceType.CPU || b.device_type != DeviceType.CPU) return true;
        if (a.numel() == 0 || b.numel() == 0) return false;
        return Unsafe.AreSame(ref StorageStart(a), ref StorageStart(b));
    }

    private static ref byte StorageStart(torch.Tensor tensor) =>
        ref Unsafe.Subtract(ref MemoryMarshal.GetReference(tensor.bytes), (nint)(tensor.storage_offset() * tensor.ElementSize));

    /// <summary>True when <paramref name="tensor"/> is the contiguous slice of <paramref name="buffer"/> that starts at element <paramref name="offset"/>.</summary>
    public static bool IsSlice(torch.Tensor tensor, torch.Tensor buffer, long offset) =>
        tensor.is_contiguous() && tensor.storage_offset() == buffer.storage_offset() + offset && tensor.dtype == buffer.dtype && SameStorage(tensor, buffer);

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    private static bool s_trimUnavailable;

    /// <summary>
    /// Hands the heap pages freed by a layout back to the operating system (glibc's <c>malloc_trim(0)</c>; a no-op
    /// elsewhere). Tensors below glibc's mmap threshold live in the heap, and freeing them leaves their pages resident:
    /// without this, moving a model's small and mid-sized tensors into a flat buffer would keep both copies resident.
    /// </summary>
    public static void ReleaseFreedHeapPages()
    {
        if (s_trimUnavailable || !OperatingSystem.IsLinux()) return;
        try
        {
            MallocTrim(0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            s_trimUnavailable = true; // not glibc (musl): nothing to trim this way
        }
    }

    /// <summary>
    /// A one-dimensional buffer of <paramref name="elements"/> elements like <paramref name="like"/> (dtype, device),
    /// zero-filled or left uninitialised, outliving any dispose scope.
    /// </summary>
    public static torch.Tensor NewBuffer(long elements, torch.Tensor like, bool zeros) =>
        (zeros ? torch.zeros(elements, like.dtype, like.device) : torch.empty(elements, like.dtype, like.device)).DetachFromDisposeScope();

    /// <summary>
    /// Re-points <paramref name="parameter"/> at the slice of <paramref name="buffer"/> at <paramref name="offset"/>,
    /// copying its values in first when <paramref name="copyValues"/>. The old storage is released right away (unless
    /// something else holds it), so moving a model tensor by tensor never holds two copies of it. Call under no_grad.
    /// </summary>
    public static void MoveInto(torch.Tensor parameter, torch.Tensor buffer, long offset, bool copyValues)
    {
        using var scope = torch.NewDisposeScope();
        torch.Tensor slice = buffer.narrow(0, offset, parameter.numel());
        if (copyValues) slice.copy_(parameter.detach().reshape(-1));
        parameter.set_(slice.view(parameter.shape));
    }
}
