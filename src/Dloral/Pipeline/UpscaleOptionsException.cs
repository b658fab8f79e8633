namespace Dloral.Pipeline;

/// <summary>An option the caller gave cannot be used (unknown model, unsupported scale, unavailable device). The CLI maps it to exit code 2.</summary>
public sealed class UpscaleOptionsException : ArgumentException
{
    public UpscaleOptionsException(string message, string? optionName = null) : base(message) => OptionName = optionName;

    /// <summary>The option at fault ("scale", "model", ...), when known.</summary>
    public string? OptionName { get; }
}
