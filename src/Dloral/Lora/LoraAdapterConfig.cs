namespace Dloral.Lora;

/// <summary>
/// Settings of one LoRA adapter, with PEFT's meaning: rank <c>r</c>, <c>lora_alpha</c> and
/// scaling = alpha / r (no rsLoRA, no dropout: DLoRAL uses neither).
/// </summary>
/// <param name="Rank">The low rank r (DLoRAL: 4).</param>
/// <param name="Alpha">lora_alpha. PEFT's LoraConfig default is 8 and DLoRAL never sets it.</param>
public sealed record LoraAdapterConfig(int Rank, double Alpha = 8.0)
{
    /// <summary>PEFT's <c>scaling = lora_alpha / r</c>.</summary>
    public double Scaling => Rank > 0 ? Alpha / Rank : throw new ArgumentOutOfRangeException(nameof(Rank), Rank, "LoRA rank must be positive");
}
