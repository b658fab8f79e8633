using Dloral.Checkpoints;
using Dloral.Pipeline;
using TorchSharp;

namespace Dloral.Tests.Checkpoints;

public sealed class ModelCatalogTests : IDisposable
{
    private readonly string _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "dloral-models-" + Guid.NewGuid().ToString("N")[..8])).FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Builtins_resolve_case_insensitively_and_create_the_right_upscaler()
    {
        var catalog = new ModelCatalog([], userDir: _dir);
        using var bicubic = catalog.Create("Bicubic", 3, torch.CPU);
        Assert.IsType<BicubicUpscaler>(bicubic);
        Assert.Equal(3, bicubic.Scale);
        using var lanczos = catalog.Create("lanczos", 2, torch.CPU);
        Assert.IsType<LanczosUpscaler>(lanczos);
        var e = Assert.Throws<UpscaleOptionsException>(() => catalog.Create("identity", 4, torch.CPU));
        Assert.Contains("--scale 1", e.Message);
    }

    [Fact]
    public void Unknown_names_and_missing_files_are_clear_errors()
    {
        var catalog = new ModelCatalog([], userDir: _dir);
        var e = Assert.Throws<UpscaleOptionsException>(() => catalog.Resolve("dloral-xl"));
        Assert.Contains("dloral-xl", e.Message);
        Assert.Contains("bicubic", e.Message);
        e = Assert.Throws<UpscaleOptionsException>(() => catalog.Resolve(Path.Combine(_dir, "missing.safetensors")));
        Assert.Contains("missing.safetensors", e.Message);
    }

    [Fact]
    public void Files_in_model_folders_are_listed_and_load_through_a_registered_loader()
    {
        var shipped = Directory.CreateDirectory(Path.Combine(_dir, "shipped")).FullName;
        var user = Directory.CreateDirectory(Path.Combine(_dir, "user")).FullName;
        File.WriteAllText(Path.Combine(shipped, "tiny.catalogtest"), "x");
        File.WriteAllText(Path.Combine(user, "mine.pkl"), "x");
        File.WriteAllText(Path.Combine(user, "notes.txt"), "not a model");
        var catalog = new ModelCatalog([shipped], user);

        var pkl = Assert.Single(catalog.Entries, e => e.Name == "mine");
        Assert.Equal(ModelOrigin.User, pkl.Origin);
        Assert.DoesNotContain(catalog.Entries, e => e.Name == "notes");
        // No loader for .pkl registered in this test: listed, but creating it says why not.
        var e = Assert.Throws<UpscaleOptionsException>(() => catalog.Create("mine", 4, torch.CPU));
        Assert.Contains("mine.pkl", e.Message);

        ModelCatalog.RegisterLoader(".catalogtest", (path, scale, device) => new BicubicUpscaler(scale));
        var tiny = Assert.Single(new ModelCatalog([shipped], user).Entries, x => x.Name == "tiny");
        Assert.Equal(ModelOrigin.Shipped, tiny.Origin);
        Assert.True(tiny.Loadable);
        using var up = catalog.Create("tiny", 4, torch.CPU);
        Assert.Equal(4, up.Scale);
        using var byPath = catalog.Create(Path.Combine(shipped, "tiny.catalogtest"), 4, torch.CPU);
        Assert.IsType<BicubicUpscaler>(byPath);
    }
}
