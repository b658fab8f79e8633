using Dloral.Lora;
using Dloral.Tests.Support;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dloral.Tests.Lora;

#pragma warning disable IDE1006 // fields are named like PyTorch state_dict keys
internal sealed class ToyBlock : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> to_q;
    private readonly ModuleList<nn.Module<Tensor, Tensor>> to_out;
    private readonly nn.Module<Tensor, Tensor> conv;

    public ToyBlock(long c) : base(nameof(ToyBlock))
    {
        to_q = nn.Linear(c, c);
        to_out = nn.ModuleList<nn.Module<Tensor, Tensor>>(nn.Linear(c, c), nn.Dropout(0.0));
        conv = nn.Conv2d(c, c, 3, stride: 2, padding: 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = conv.call(x);                                  // [n,c,h/2,w/2]
        var t = h.flatten(2).transpose(1, 2);                  // [n,hw,c]
        t = to_q.call(t);
        foreach (var m in to_out) t = m.call(t);
        return t.transpose(1, 2).reshape(h.shape).MoveToOuterDisposeScope();
    }
}

internal sealed class ToyNet : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> conv_in;
    private readonly ModuleList<ToyBlock> blocks;
    private readonly nn.Module<Tensor, Tensor> conv_out;
    private readonly nn.Module<Tensor, Tensor> act;

    public ToyNet() : base(nameof(ToyNet))
    {
        conv_in = nn.Conv2d(3, 8, 3, padding: 1);
        blocks = nn.ModuleList(new ToyBlock(8), new ToyBlock(8));
        conv_out = nn.Conv2d(8, 2, 1);
        act = nn.SiLU();
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = act.call(conv_in.call(x));
        foreach (var b in blocks) h = act.call(b.call(h));
        return conv_out.call(h).MoveToOuterDisposeScope();
    }
}
#pragma warning restore IDE1006

public class LoraLayerTests
{
    private static readonly string[] Targets = ["conv_in", "blocks.0.to_q", "blocks.0.to_out.0", "blocks.1.conv", "conv_out"];

    public LoraLayerTests() => TorchRuntime.Initialize();

    /// <summary>A toy net whose weights come from its own generator (the global RNG is shared by parallel test classes).</summary>
    private static ToyNet MakeNet(long seed = 1)
    {
        var net = new ToyNet();
        net.eval();
        using var g = new Generator((ulong)seed);
        using var guard = no_grad();
        foreach (var (_, p) in net.named_parameters()) p.copy_(torch.randn(p.shape, generator: g) * 0.3);
        return net;
    }

    /// <summary>Gives every lora_B random values so the adapters matter (fresh adapters are zero).</summary>
    private static void RandomizeB(nn.Module net, long seed)
    {
        using var g = new Generator((ulong)seed);
        using var guard = no_grad();
        foreach (var (name, p) in net.named_parameters())
            if (name.Contains(".lora_B.", StringComparison.Ordinal)) p.copy_(torch.randn(p.shape, generator: g) * 0.1);
    }

    [Fact]
    public void Injection_gives_PEFT_parameter_names_and_keeps_order()
    {
        var net = MakeNet();
        var before = net.named_parameters().Select(p => p.name).ToList();
        AdapterInjector.AddAdapter(net, "first", Targets, new LoraAdapterConfig(4));
        AdapterInjector.AddAdapter(net, "second", ["blocks.0.to_q"], new LoraAdapterConfig(2, 4));
        var after = net.named_parameters().Select(p => p.name).ToList();

        Assert.Contains("blocks.0.to_q.base_layer.weight", after);
        Assert.Contains("blocks.0.to_q.base_layer.bias", after);
        Assert.Contains("blocks.0.to_q.lora_A.first.weight", after);
        Assert.Contains("blocks.0.to_q.lora_B.second.weight", after);
        Assert.Contains("blocks.0.to_out.0.lora_A.first.weight", after);
        Assert.Contains("conv_in.lora_B.first.weight", after);
        Assert.Contains("blocks.1.to_q.weight", after); // not a target: plain name
        Assert.DoesNotContain("blocks.0.to_q.weight", after);

        // Base parameters keep their relative order (wrapped names map back by dropping ".base_layer").
        var baseOnly = after.Where(n => !n.Contains(".lora_", StringComparison.Ordinal)).Select(n => n.Replace(".base_layer", "", StringComparison.Ordinal)).ToList();
        Assert.Equal(before, baseOnly);

        var sd = net.state_dict();
        Assert.Equal(new long[] { 4, 3, 3, 3 }, sd["conv_in.lora_A.first.weight"].shape);   // A keeps the 3×3 kernel
        Assert.Equal(new long[] { 8, 4, 1, 1 }, sd["conv_in.lora_B.first.weight"].shape);   // B is 1×1
        Assert.Equal(new long[] { 2, 8 }, sd["blocks.0.to_q.lora_A.second.weight"].shape);
        Assert.Equal(new long[] { 8, 2 }, sd["blocks.0.to_q.lora_B.second.weight"].shape);
        Assert.IsType<LoraConv2d>(ModuleTree.Get(net, "blocks.1.conv"));
        Assert.IsType<LoraLinear>(ModuleTree.Get(net, "blocks.0.to_out.0"));
        Assert.Equal(5, LoraModel.Layers(net).Count()); // to_q holds both adapters in one wrapper
    }

    [Fact]
    public void Fresh_adapters_are_gaussian_A_zero_B_and_seeded()
    {
        var net1 = MakeNet();
        var net2 = MakeNet();
        using (var g1 = new Generator(7)) AdapterInjector.AddAdapter(net1, "a", Targets, new LoraAdapterConfig(4), g1);
        using (var g2 = new Generator(7)) AdapterInjector.AddAdapter(net2, "a", Targets, new LoraAdapterConfig(4), g2);
        var sd1 = net1.state_dict();
        var sd2 = net2.state_dict();
        foreach (var key in sd1.Keys.Where(k => k.Contains(".lora_", StringComparison.Ordinal)))
            TensorAssert.Equal(sd1[key], sd2[key], key);
        foreach (var key in sd1.Keys.Where(k => k.Contains(".lora_B.", StringComparison.Ordinal)))
            Assert.Equal(0.0, sd1[key].abs().max().item<float>());

        // std 1/r over many draws (a big layer gives a tight estimate).
        var lin = new LoraLinear(nn.Linear(4096, 16));
        using var g = new Generator(3);
        lin.AddAdapter("x", new LoraAdapterConfig(4), g);
        double std = lin.LoraA("x").parameters().First().std().item<float>();
        Assert.InRange(std, 0.25 * 0.98, 0.25 * 1.02);

        // Zero B: the wrapped model equals the base model.
        var baseNet = MakeNet();
        var x = torch.randn(2, 3, 16, 16, generator: new torch.Generator(6));
        using var guard = no_grad();
        TensorAssert.Close(baseNet.call(x), net1.call(x), 0, 0, "zero-B adapters");
    }

    [Fact]
    public void Forward_is_base_plus_weighted_scaled_BA_for_linear_and_conv()
    {
        using var guard = no_grad();
        var conv = nn.Conv2d(6, 5, 3, stride: 2, padding: 1);
        var lc = new LoraConv2d(conv);
        lc.AddAdapter("p", new LoraAdapterConfig(4));          // scaling 2
        lc.AddAdapter("q", new LoraAdapterConfig(2, 1.0));     // scaling 0.5
        RandomizeB(lc, 5);
        var x = torch.randn(2, 6, 9, 11, generator: new torch.Generator(7));

        var baseY = nn.functional.conv2d(x, conv.weight, conv.bias, strides: [2, 2], padding: [1, 1]);
        Tensor Branch(string a) => nn.functional.conv2d(
            nn.functional.conv2d(x, lc.LoraA(a).parameters().First(), null, strides: [2, 2], padding: [1, 1]),
            lc.LoraB(a).parameters().First());

        lc.SetAdapters(["p"]);
        TensorAssert.Close(baseY + 2.0 * Branch("p"), lc.call(x), 1e-6, 1e-5, "conv p");
        lc.SetAdapters(["p", "q"], [1.5, -2.0]);
        TensorAssert.Close(baseY + 3.0 * Branch("p") - 1.0 * Branch("q"), lc.call(x), 1e-6, 1e-5, "conv p,q weighted");
        lc.SetAdapters(["q", "missing_here"]);                  // PEFT: names a layer lacks are ignored
        TensorAssert.Close(baseY + 0.5 * Branch("q"), lc.call(x), 1e-6, 1e-5, "conv q");
        lc.DisableAdapters();
        TensorAssert.Close(baseY, lc.call(x), 0, 0, "conv disabled");
        lc.EnableAdapters();
        TensorAssert.Close(baseY + 0.5 * Branch("q"), lc.call(x), 1e-6, 1e-5, "conv re-enabled");

        var lin = nn.Linear(7, 3);
        var ll = new LoraLinear(lin);
        ll.AddAdapter("p", new LoraAdapterConfig(4));
        RandomizeB(ll, 6);
        var xl = torch.randn(4, 5, 7, generator: new torch.Generator(8));
        var a = ll.LoraA("p").parameters().First();
        var b = ll.LoraB("p").parameters().First();
        ll.SetAdapters(["p"], [0.25]);
        var expected = nn.functional.linear(xl, lin.weight, lin.bias) + 0.25 * 2.0 * xl.matmul(a.t()).matmul(b.t());
        TensorAssert.Close(expected, ll.call(xl), 1e-6, 1e-5, "linear");
    }

    [Fact]
    public void Conv_delta_equals_PEFT_conv_formula()
    {
        using var guard = no_grad();
        var lc = new LoraConv2d(nn.Conv2d(6, 5, 3, padding: 1));
        lc.AddAdapter("p", new LoraAdapterConfig(4));
        RandomizeB(lc, 9);
        var a = lc.LoraA("p").parameters().First();
        var b = lc.LoraB("p").parameters().First();
        // peft: conv2d(A.permute(1,0,2,3), B).permute(1,0,2,3)
        var peft = nn.functional.conv2d(a.permute(1, 0, 2, 3), b).permute(1, 0, 2, 3);
        TensorAssert.Close(peft, lc.DeltaWeight("p"), 1e-7, 1e-5, "conv delta");
    }

    [Fact]
    public void Merged_equals_unmerged_and_unmerge_restores_weights()
    {
        using var guard = no_grad();
        var net = MakeNet(3);
        AdapterInjector.AddAdapter(net, "a", Targets, new LoraAdapterConfig(4));
        AdapterInjector.AddAdapter(net, "b", Targets.Skip(1), new LoraAdapterConfig(4, 16));
        RandomizeB(net, 21);
        var baseWeights = net.state_dict().Where(kv => kv.Key.Contains("base_layer", StringComparison.Ordinal))
                             .ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        var x = torch.randn(2, 3, 16, 16, generator: new torch.Generator(5));

        LoraModel.SetAdapters(net, ["a", "b"], [1.0, 0.7]);
        var unmerged = net.call(x);
        LoraModel.Merge(net);
        Assert.All(LoraModel.Layers(net), l => Assert.True(l.Layer.IsMerged, l.Path));
        var merged = net.call(x);
        TensorAssert.Close(unmerged, merged, 1e-5, 1e-4, "merged vs unmerged");
        Assert.True(TensorAssert.MaxAbsDiff(baseWeights["conv_in.base_layer.weight"], net.state_dict()["conv_in.base_layer.weight"]) > 1e-3,
            "merge must change the base weight");

        // Changing the set while merged re-merges the new set.
        LoraModel.SetAdapters(net, ["b"]);
        var mergedB = net.call(x);
        LoraModel.Unmerge(net);
        TensorAssert.Close(net.call(x), mergedB, 1e-5, 1e-4, "re-merged b vs unmerged b");

        foreach (var (k, w) in baseWeights)
            TensorAssert.Close(w, net.state_dict()[k], 1e-6, 0, $"unmerged {k}");
        LoraModel.DisableAdapters(net);
        var baseNet = MakeNet(3);
        // Weights come back within float rounding of a merge/unmerge round trip (checked above), so the output
        // may differ by a few ulps of its magnitude.
        TensorAssert.Close(baseNet.call(x), net.call(x), 1e-5, 1e-5, "disabled = base");
    }

    [Fact]
    public void Replace_reports_unknown_paths_and_unsupported_targets()
    {
        var net = MakeNet();
        var e1 = Assert.Throws<KeyNotFoundException>(() => AdapterInjector.Wrap(net, "blocks.0.to_k"));
        Assert.Contains("blocks.0.to_k", e1.Message, StringComparison.Ordinal);
        var e2 = Assert.Throws<NotSupportedException>(() => AdapterInjector.Wrap(net, "act"));
        Assert.Contains("SiLU", e2.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => LoraModel.SetAdapters(net, ["nope"]));
    }
}
