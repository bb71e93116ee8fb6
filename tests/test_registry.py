"""The model registry (spec §9): listing, config validation, info, register / export /
import / archive, and resolving models to loaded handles. Nothing here touches the network
or writes outside tmp_path (see the ``home`` fixture)."""

from __future__ import annotations

import urllib.request
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

from empanada_rs.cli import NotFoundError
from empanada_rs.errors import (
    ConfigError,
    EmpanadaError,
    InvalidArgumentError,
    OutputExistsError,
)
from empanada_rs.inference.runner import ModelHandle
from empanada_rs.registry import (
    archive_model,
    export_model,
    fetch,
    import_model,
    list_models,
    load_config,
    model_info,
    paths,
    register_model,
    resolve_model,
)
from empanada_rs.registry import resolve as resolve

from .registry_helpers import config_dict, home, save_model, tree, write_yaml

__all__ = ["home"]  # the fixture

BUILTINS = {
    "MitoNet_v1": 16,
    "MitoNet_v1_mini": 128,
    "NucleoNet_base_v2": 512,
    "DropNet_base_v1": 512,
}


@pytest.fixture
def model_pair(home: Path) -> Path:
    """A config in tmp/src with a float (kind 1) and a quantized (kind 2) model next to it,
    referenced by relative paths."""
    src = home / "src"
    save_model(src / "float.pth", kind=1)
    save_model(src / "quant.pth", kind=2)
    return write_yaml(src / "pair.yaml", config_dict("float.pth", "quant.pth"))


# ---------------------------------------------------------------- listing and configs


def test_builtins_are_listed_and_valid(home: Path) -> None:
    models = list_models()
    for name, pf in BUILTINS.items():
        assert models[name].source == "builtin"
        config = load_config(name)
        assert config["padding_factor"] == pf
        assert config["model"].startswith("https://zenodo.org/")
        assert config["model_quantized"].startswith("https://zenodo.org/")
        assert config["norms"] == {"mean": 0.57571, "std": 0.12765}
        assert config["thing_list"] == [1] and config["labels"] == [1]
        assert config["FINETUNE"]["engine_params"]["label_divisor"] == 1000


def test_listing_order_and_override(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builtin = home / "builtin"
    monkeypatch.setattr(paths, "builtin_config_dir", lambda: builtin)
    for d, names in (
        (builtin, "AB"),
        (paths.empanada_config_dir(), "BC"),
        (paths.user_config_dir(), "CD"),
    ):
        for n in names:
            write_yaml(d / f"{n}.yaml", config_dict())
    (paths.user_config_dir() / "notes.txt").write_text("not a config")
    (paths.user_config_dir() / ".hidden.yaml").write_text("x: 1")
    models = list_models()
    assert list(models) == ["A", "B", "C", "D"]
    assert [m.source for m in models.values()] == ["builtin", "empanada", "user", "user"]
    assert models["B"].config_path == paths.empanada_config_dir() / "B.yaml"


def test_relative_model_paths_resolve_against_the_config_dir(model_pair: Path) -> None:
    config = load_config(model_pair)
    assert config["model"] == str(model_pair.parent / "float.pth")
    assert config["model_quantized"] == str(model_pair.parent / "quant.pth")


def test_unknown_model_lists_available_names(home: Path) -> None:
    with pytest.raises(NotFoundError, match="MitoNet_v1"):
        load_config("NoSuchModel")
    with pytest.raises(NotFoundError, match="does not exist"):
        load_config(home / "missing.yaml")


def _drop(key: str):  # type: ignore[no-untyped-def]
    def edit(c: dict) -> None:
        del c[key]

    return edit


def _set(key: str, value: object):  # type: ignore[no-untyped-def]
    def edit(c: dict) -> None:
        c[key] = value

    return edit


BAD_CONFIGS = {
    "no model": (_drop("model"), "missing key 'model'"),
    "no norms": (_drop("norms"), "missing key 'norms'"),
    "no padding": (_drop("padding_factor"), "missing key 'padding_factor'"),
    "no thing_list": (_drop("thing_list"), "missing key 'thing_list'"),
    "no labels": (_drop("labels"), "missing key 'labels'"),
    "no class_names": (_drop("class_names"), "missing key 'class_names'"),
    "model not str": (_set("model", 3), "'model' must be"),
    "quantized not str": (_set("model_quantized", 5), "'model_quantized' must be"),
    "norms no std": (_set("norms", {"mean": 0.5}), "'norms' must be a mapping"),
    "norms std 0": (_set("norms", {"mean": 0.5, "std": 0}), "std > 0"),
    "padding str": (_set("padding_factor", "16"), "'padding_factor' must be"),
    "padding 0": (_set("padding_factor", 0), "'padding_factor' must be"),
    "padding bool": (_set("padding_factor", True), "'padding_factor' must be"),
    "labels empty": (_set("labels", []), "'labels' is empty"),
    "labels zero": (_set("labels", [0]), "'labels' must be a list of positive"),
    "labels twice": (_set("labels", [1, 1]), "lists a class twice"),
    "thing not label": (_set("thing_list", [2]), "not in 'labels'"),
    "names not map": (_set("class_names", ["mito"]), "'class_names' must map"),
    "names missing": (_set("class_names", {2: "x"}), "no name for class"),
    "names empty": (_set("class_names", {1: ""}), "non-empty"),
    "description": (_set("description", 3), "'description' must be text"),
    "finetune": (_set("FINETUNE", [1]), "'FINETUNE' must be a mapping"),
    "divisor": (
        _set("FINETUNE", {"dataset_class": "PanopticDataset", "dataset_params": {}}),
        "label_divisor",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_every_key_is_validated(home: Path, case: str) -> None:
    edit, message = BAD_CONFIGS[case]
    config = config_dict()
    edit(config)
    path = write_yaml(home / "bad.yaml", config)
    with pytest.raises(ConfigError, match=message) as err:
        load_config(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("text", ["model: [unclosed\n", "- just\n- a list\n", "", "\x00\xff"])
def test_unreadable_yaml_is_a_config_error(home: Path, text: str) -> None:
    path = home / "broken.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_config(path)


def test_string_class_ids_and_empty_quantized_are_normalised(home: Path) -> None:
    path = write_yaml(home / "c.yaml", config_dict(quantized="", class_names={"1": "mito"}))
    config = load_config(path)
    assert config["class_names"] == {1: "mito"} and config["model_quantized"] is None


def test_base_inheritance(home: Path) -> None:
    write_yaml(home / "parent" / "base.yaml", config_dict("m.pth"))
    child = write_yaml(
        home / "child" / "c.yaml", {"BASE": "../parent/base.yaml", "padding_factor": 32}
    )
    config = load_config(child)
    assert config["padding_factor"] == 32 and "BASE" not in config
    assert config["model"] == str(home / "parent" / "m.pth")


# ------------------------------------------------------------------------------ info


def test_info_single_class(home: Path) -> None:
    text = model_info("MitoNet_v1")
    assert "MitoNet_v1" in text and "divisible by 16" in text
    assert "Label divisor: None" in text
    assert "class 1 (mito): instance segmentation, first label 1" in text


def test_info_panoptic_dataset(home: Path) -> None:
    config = config_dict(
        labels=[1, 2, 3],
        thing_list=[1, 3],
        class_names={1: "mito", 2: "er", 3: "nucleus"},
        padding_factor=128,
        FINETUNE={"dataset_class": "PanopticDataset", "dataset_params": {"label_divisor": 1000}},
    )
    write_yaml(paths.user_config_dir() / "multi.yaml", config)
    text = model_info("multi")
    assert "divisible by 128" in text and "Label divisor: 1000" in text
    assert "class 1 (mito): instance segmentation, first label 1001" in text
    assert "class 2 (er): semantic segmentation, first label 2001" in text
    assert "class 3 (nucleus): instance segmentation, first label 3001" in text


# -------------------------------------------------------------------------- register


def test_register_writes_absolute_paths_and_renames_on_clash(model_pair: Path) -> None:
    before = tree(paths.empanada_home())
    path = register_model("mine", model_pair)
    assert path == paths.user_config_dir() / "mine.yaml"
    stored = yaml.safe_load(path.read_text())
    assert stored["model"] == str(model_pair.parent / "float.pth")
    assert list_models()["mine"].source == "user"
    assert register_model("mine", model_pair).stem == "mineNew"
    assert register_model("mine", model_pair).stem == "mineNewNew"
    assert register_model("MitoNet_v1", model_pair).stem == "MitoNet_v1New"
    # overwrite replaces ours in place (and may shadow a built-in)
    other = save_model(model_pair.parent / "other.pth", kind=3)
    assert register_model("mine", model_pair, model=other, overwrite=True) == path
    assert load_config("mine")["model"] == str(other)
    assert register_model("MitoNet_v1", model_pair, overwrite=True).stem == "MitoNet_v1"
    assert list_models()["MitoNet_v1"].source == "user"
    assert tree(paths.empanada_home()) == before


def test_register_model_argument_relative_to_cwd(model_pair: Path, home: Path) -> None:
    save_model(home / "here.pth")
    register_model("m", model_pair, model="here.pth", quantized=Path("src/quant.pth"))
    config = load_config("m")
    assert config["model"] == str(home / "here.pth")
    assert config["model_quantized"] == str(home / "src" / "quant.pth")


def test_register_unreachable_model_writes_nothing(model_pair: Path, home: Path) -> None:
    with pytest.raises(NotFoundError, match="neither an existing file"):
        register_model("m", model_pair, model=home / "nope.pth")
    with pytest.raises(NotFoundError, match="quantized"):
        register_model("m", model_pair, quantized="https://example.invalid/q.pth")
    bad = write_yaml(home / "bad.yaml", config_dict("missing.pth"))
    with pytest.raises(NotFoundError):
        register_model("m", bad)
    with pytest.raises(ConfigError):
        register_model("m", write_yaml(home / "worse.yaml", {"model": "x"}))
    with pytest.raises(InvalidArgumentError, match="name"):
        register_model("../evil", model_pair)
    assert not paths.user_config_dir().exists() or not any(paths.user_config_dir().iterdir())


def test_register_url_model_uses_the_probe(
    model_pair: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    def probe(url: str, timeout: float = 10.0) -> bool:
        seen.append(url)
        return True

    monkeypatch.setattr(fetch, "url_reachable", probe)
    url = "https://example.org/models/m.pth?download=1"
    register_model("remote", model_pair, model=url)
    assert load_config("remote")["model"] == url and seen == [url]


def test_unreachable_quantized_in_yaml_only_warns(home: Path) -> None:
    save_model(home / "f.pth")
    cfg = write_yaml(home / "c.yaml", config_dict("f.pth", "gone.pth"))
    with pytest.warns(UserWarning, match="model_quantized"):
        register_model("w", cfg)
    assert load_config("w")["model_quantized"] == str(home / "gone.pth")


def test_real_probe_verifies_tls_and_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    contexts = []

    def fake_urlopen(request, timeout, context):  # type: ignore[no-untyped-def]
        contexts.append(context)
        raise OSError("offline")

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    assert fetch.url_reachable("https://example.org/x.pth") is False
    assert contexts and contexts[0].verify_mode.name == "CERT_REQUIRED"
    assert contexts[0].check_hostname


# ------------------------------------------------------------ export / import / archive


def test_export_import_round_trip(model_pair: Path, home: Path) -> None:
    register_model("pair", model_pair)
    out_dir = home / "out"
    out_dir.mkdir()
    archive = export_model("pair", out_dir)
    assert archive == out_dir / "pair.empanada"
    assert sorted(p.name for p in out_dir.iterdir()) == ["pair.empanada"]
    with zipfile.ZipFile(archive) as zf:
        assert sorted(zf.namelist()) == ["pair.pth", "pair.yaml", "pair_quantized.pth"]
        stored = yaml.safe_load(zf.read("pair.yaml"))
        assert stored["model"] == "pair.pth" and stored["model_quantized"] == "pair_quantized.pth"
        assert zf.read("pair.pth") == (model_pair.parent / "float.pth").read_bytes()

    name = import_model(archive, name="copy")
    assert name == "copy"
    config = load_config("copy")
    assert config["model"] == str(paths.models_dir() / "copy.pth")
    assert config["model_quantized"] == str(paths.models_dir() / "copy_quantized.pth")
    assert Path(config["model"]).read_bytes() == (model_pair.parent / "float.pth").read_bytes()
    handle = resolve_model("copy", device="cpu", use_quantized=False)
    assert handle.module.kind == 1
    # the default name is the archive's stem; it is taken, so "New" is appended
    assert import_model(archive) == "pairNew"
    assert not (out_dir / "tmp").exists()
    with pytest.raises(OutputExistsError):
        export_model("pair", out_dir)


def test_export_downloads_url_models(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = save_model(home / "remote_src.pth", kind=5)

    def fake_download(url: str, dest: Path, *, progress: bool = True) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(src.read_bytes())
        return dest

    monkeypatch.setattr(fetch, "download", fake_download)
    monkeypatch.setattr(fetch, "url_reachable", lambda url, timeout=10.0: True)
    cfg = write_yaml(home / "r.yaml", config_dict("https://example.org/files/R.pth?download=1"))
    register_model("R", cfg)
    archive = export_model("R", home)
    with zipfile.ZipFile(archive) as zf:
        assert zf.read("R.pth") == src.read_bytes()


def _corrupt_archives(good: Path, home: Path) -> list[Path]:
    bad = []
    junk = home / "junk.empanada"
    junk.write_bytes(b"not a zip at all")
    bad.append(junk)
    data = bytearray(good.read_bytes())
    flipped = home / "flipped.empanada"
    i = data.find(b"pair.pth") + 200  # inside the first model's stored bytes
    data[i] ^= 0xFF
    flipped.write_bytes(bytes(data))
    bad.append(flipped)
    with zipfile.ZipFile(good) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    for name, drop, cfg in (
        ("nomodel", "pair_quantized.pth", None),
        ("badcfg", None, b"model: [oops\n"),
        ("nokeys", None, b"model: pair.pth\n"),
    ):
        path = home / f"{name}.empanada"
        with zipfile.ZipFile(path, "w") as zf:
            for n, content in members.items():
                if n == drop:
                    continue
                zf.writestr(f"{name}.yaml" if n == "pair.yaml" else n, cfg or content)
        bad.append(path)
    return bad


def test_failed_import_leaves_everything_untouched(model_pair: Path, home: Path) -> None:
    register_model("pair", model_pair)
    good = export_model("pair", home)
    before = tree(paths.home()), tree(paths.empanada_home())
    for bad in _corrupt_archives(good, home):
        with pytest.raises(ConfigError):
            import_model(bad, name="x")
        assert (tree(paths.home()), tree(paths.empanada_home())) == before, bad.name
    with pytest.raises(NotFoundError):
        import_model(home / "absent.empanada")


def test_import_failure_after_copy_removes_copies(
    model_pair: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_model("pair", model_pair)
    good = export_model("pair", home)
    before = tree(paths.home())
    from empanada_rs.registry import manage

    def broken_write(config: object, path: Path) -> Path:
        raise OSError("disk full")

    monkeypatch.setattr(manage, "write_config", broken_write)
    with pytest.raises(OSError, match="disk full"):
        import_model(good, name="y")
    assert tree(paths.home()) == before


def test_archive_moves_config_and_owned_files(model_pair: Path, home: Path) -> None:
    register_model("pair", model_pair)
    archive = export_model("pair", home)
    import_model(archive, name="imp")
    config = load_config("imp")
    archived = archive_model("imp")
    assert "imp" not in list_models()
    assert archived == paths.archive_dir() / "imp.yaml"
    assert not Path(config["model"]).exists() and not Path(config["model_quantized"]).exists()
    moved = yaml.safe_load(archived.read_text())
    assert Path(moved["model"]).parent == paths.archive_dir()
    assert Path(moved["model"]).read_bytes() == (model_pair.parent / "float.pth").read_bytes()
    # a model registered by path keeps the user's own files where they are
    archive_model("pair")
    assert (model_pair.parent / "float.pth").is_file()
    assert (paths.archive_dir() / "pair.yaml").is_file()
    with pytest.raises(InvalidArgumentError, match="builtin"):
        archive_model("MitoNet_v1")
    with pytest.raises(NotFoundError):
        archive_model("imp")


def test_empanada_models_cannot_be_archived(home: Path) -> None:
    save_model(home / "e.pth")
    write_yaml(paths.empanada_config_dir() / "theirs.yaml", config_dict(str(home / "e.pth")))
    before = tree(paths.empanada_home())
    with pytest.raises(InvalidArgumentError, match="empanada"):
        archive_model("theirs")
    assert tree(paths.empanada_home()) == before


# --------------------------------------------------------------------------- resolve


def test_resolve_model_picks_quantized_only_on_cpu(
    model_pair: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resolve, "quantized_engine", lambda: "fbgemm")
    register_model("pair", model_pair)
    auto = resolve_model("pair", device="cpu")
    assert auto.quantized and auto.module.kind == 2 and auto.name == "pair"
    assert auto.padding_factor == 16 and auto.device == torch.device("cpu")
    floated = resolve_model(model_pair, device="cpu", use_quantized=False)
    assert not floated.quantized and floated.module.kind == 1 and floated.name == "pair"
    assert resolve_model(auto) is auto
    x = torch.zeros(1, 1, 16, 16)
    out = floated.module(x, 2, True)
    assert out["sem_logits"].shape == (1, 1, 16, 16) and out["offsets"].shape == (1, 2, 16, 16)
    assert floated.module(x, 0, False)["ctr_hmp"].shape == (1, 1, 4, 4)


def test_resolve_model_falls_back_to_float(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_model(home / "f.pth", kind=1)
    cfg = write_yaml(home / "float_only.yaml", config_dict("f.pth"))
    with pytest.warns(UserWarning, match="float model"):
        handle = resolve_model(str(cfg), device="cpu", use_quantized=True)
    assert not handle.quantized and handle.module.kind == 1
    # a quantized entry whose file is missing is not used in auto mode
    cfg2 = write_yaml(home / "gone_q.yaml", config_dict("f.pth", "gone.pth"))
    assert not resolve_model(cfg2, device="cpu").quantized
    monkeypatch.setattr(resolve, "quantized_engine", lambda: "none")
    save_model(home / "q.pth", kind=2)
    cfg3 = write_yaml(home / "noengine.yaml", config_dict("f.pth", "q.pth"))
    assert resolve_model(cfg3, device="cpu").module.kind == 1


def test_resolve_model_rejects_a_non_model_file(home: Path) -> None:
    (home / "junk.pth").write_bytes(b"not torchscript")
    cfg = write_yaml(home / "junk.yaml", config_dict("junk.pth"))
    with pytest.raises(EmpanadaError, match="junk.pth"):
        resolve_model(cfg, device="cpu")


def test_download_cache_file_url(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = save_model(home / "served" / "Remote.pth", kind=7)
    url = src.as_uri()
    cfg = write_yaml(home / "u.yaml", config_dict(url))
    handle = resolve_model(cfg, device="cpu")
    assert handle.module.kind == 7
    cached = fetch.cache_path(url)
    assert cached.parent == paths.models_dir() and cached.name.startswith("Remote-")
    assert cached.read_bytes() == src.read_bytes()
    assert [p.name for p in paths.models_dir().iterdir()] == [cached.name]  # no temp left

    def fail(*a: object, **k: object) -> Path:
        raise AssertionError("downloaded twice")

    monkeypatch.setattr(fetch, "download", fail)
    assert resolve_model(cfg, device="cpu").module.kind == 7


def test_https_download_through_fake_and_empanada_cache_reuse(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = save_model(home / "src.pth", kind=4)
    calls: list[tuple[str, Path]] = []

    def fake_download(url: str, dest: Path, *, progress: bool = True) -> Path:
        calls.append((url, dest))
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(src.read_bytes())
        return dest

    monkeypatch.setattr(fetch, "download", fake_download)
    url = "https://example.org/record/1/files/Net.pth?download=1"
    path = fetch.local_file(url)
    assert calls == [(url, fetch.cache_path(url))] and path == fetch.cache_path(url)
    # empanada-napari's download of the same file name is reused, not fetched again
    save_model(paths.empanada_home() / "Other.pth", kind=6)
    other = "https://example.org/record/2/files/Other.pth?download=1"
    assert fetch.local_file(other) == paths.empanada_home() / "Other.pth"
    assert len(calls) == 1


def test_interrupted_download_leaves_no_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        headers = {"Content-Length": "100"}

        def __init__(self) -> None:
            self.n = 0

        def __enter__(self) -> Broken:
            return self

        def __exit__(self, *a: object) -> None:
            return None

        def read(self, size: int) -> bytes:
            self.n += 1
            if self.n > 1:
                raise OSError("connection reset")
            return b"x" * 50

    monkeypatch.setattr(fetch, "_open", lambda url, method, timeout: Broken())
    url = "https://example.org/files/Half.pth"
    with pytest.raises(NotFoundError, match="cannot download"):
        fetch.local_file(url, progress=False)
    assert list(paths.models_dir().iterdir()) == []


def test_model_handle_is_passed_through(home: Path) -> None:
    handle = ModelHandle(module=torch.nn.Identity(), config={})
    assert resolve_model(handle) is handle


def test_package_data_is_not_gitignored() -> None:
    """maturin leaves gitignored files out of the wheel: configs and weights must not be."""
    import shutil
    import subprocess

    root = Path(__file__).resolve().parents[1]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    probes = ["python/empanada_rs/configs/X.yaml", "python/empanada_rs/weights/X.pth"]
    result = subprocess.run(
        ["git", "-C", str(root), "check-ignore", *probes], capture_output=True, text=True
    )
    assert result.stdout.strip() == "", f"ignored package data: {result.stdout}"
