namespace Bagel.Models.Lora;

/// <summary>A LoRA configuration, target pattern or adapter file does not fit the model; the message names the
/// option, module path, key or file at fault.</summary>
public sealed class LoraException : Exception
{
    /// <summary>Creates the exception.</summary>
    public LoraException() { }

    /// <summary>Creates the exception with a message.</summary>
    public LoraException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and its cause.</summary>
    public LoraException(string message, Exception innerException) : base(message, innerException) { }
}
