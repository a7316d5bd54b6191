namespace Bagel.Core.Devices;

/// <summary>
/// A device, dtype or thread setting is invalid or cannot be honoured on this machine. The message names the
/// setting, the bad value and the accepted values (or what to change).
/// </summary>
public sealed class ComputeSettingException : Exception
{
    /// <summary>Creates the exception for <paramref name="setting"/> with a message that says what to do.</summary>
    /// <param name="setting">The setting's name, e.g. <c>Device</c> or <c>DType</c>.</param>
    /// <param name="message">What is wrong and how to fix it.</param>
    /// <param name="innerException">The underlying failure, if any.</param>
    public ComputeSettingException(string setting, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Setting = setting;
    }

    /// <summary>The name of the offending setting (several names joined by ", " when several are bad).</summary>
    public string Setting { get; }
}
