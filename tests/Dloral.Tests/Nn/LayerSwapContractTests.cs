using System.Reflection;
using Dloral.Nn;
using Dloral.Tests.Support;
using static TorchSharp.torch;

namespace Dloral.Tests.Nn;

/// <summary>
/// The contract the LoRA injector relies on: every Linear/Conv2d is a <c>Module&lt;Tensor,Tensor&gt;</c> field (or
/// ModuleList slot) named like its state_dict key and only called through it, so replacing it swaps the computation.
/// </summary>
public class LayerSwapContractTests
{
    private sealed class Doubler : nn.Module<Tensor, Tensor>
    {
        private nn.Module<Tensor, Tensor> base_layer;

        public Doubler(nn.Module<Tensor, Tensor> inner) : base(nameof(Doubler))
        {
            base_layer = inner;
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => base_layer.call(x) * 2;
    }

    [Fact]
    public void Every_linear_and_conv_of_the_unet_is_a_replaceable_field_or_slot()
    {
        var config = Dloral.Diffusion.UNet2DConditionConfig.Load(GoldenData.PathOf("tiny_unet", "unet", "config.json"));
        using var unet = new Dloral.Diffusion.UNet2DCondition(config, ModelOptions.Meta);
        var targets = unet.named_modules().Where(m => m.module is TorchSharp.Modules.Linear or TorchSharp.Modules.Conv2d).Select(m => m.name).ToList();
        Assert.Contains("down_blocks.0.attentions.0.transformer_blocks.0.ff.net.2", targets);
        Assert.Contains("conv_in", targets);
        foreach (var path in targets) ModuleSurgery.Replace(unet, path, inner => new Doubler(inner));
        var names = unet.state_dict().Keys.ToList();
        Assert.All(names.Where(n => n.EndsWith(".weight") && !n.Contains("norm")), n => Assert.Contains("base_layer", n));
        Assert.Equal(targets.Count, unet.named_modules().Count(m => m.module is Doubler));
    }

    [Fact]
    public void Field_and_list_slot_replacement_changes_forward_and_state_dict_names()
    {
        manual_seed(1);
        using var attn = new Attention(8, null, 2, 4, ModelOptions.Default);
        using var x = randn(1, 5, 8);
        using var before = attn.call(x, null);

        var field = typeof(Attention).GetField("to_v", BindingFlags.NonPublic | BindingFlags.Instance)!;
        Assert.Equal(typeof(nn.Module<Tensor, Tensor>), field.FieldType);
        ModuleSurgery.Replace(attn, "to_v", inner => new Doubler(inner));
        Assert.IsType<Doubler>(field.GetValue(attn));
        ModuleSurgery.Replace(attn, "to_out.0", inner => new Doubler(inner));

        var names = attn.state_dict().Keys.ToList();
        Assert.Contains("to_v.base_layer.weight", names);
        Assert.Contains("to_out.0.base_layer.weight", names);
        Assert.DoesNotContain("to_v.weight", names);
        Assert.DoesNotContain("to_out.0.weight", names);

        // v doubled and the output projection doubled: attention output (before its bias) scales by 4.
        using var after = attn.call(x, null);
        using var bias = attn.state_dict()["to_out.0.base_layer.bias"];
        TensorAssert.Close((before - bias) * 4 + bias * 2, after, 1e-5, 1e-4, "swapped layers are used");
    }
}
