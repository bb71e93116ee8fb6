"""Training with our real architecture (tiny widths): one epoch, finetune of the saved
TorchScript file, export with the spec §9.2 config keys, and the bundled model."""

from pathlib import Path

import numpy as np
import pytest
import torch

models = pytest.importorskip("empanada_rs.models")
yaml = pytest.importorskip("yaml")

from empanada_rs.errors import InvalidArgumentError  # noqa: E402
from empanada_rs.training import (  # noqa: E402
    Augment,
    PhantomDataset,
    export_model,
    finetune,
    instance_f1,
    set_trainable_layers,
    train,
)

PKG = Path(__file__).resolve().parents[1] / "python" / "empanada_rs"
SPEC_KEYS = [
    "model",
    "model_quantized",
    "norms",
    "padding_factor",
    "thing_list",
    "labels",
    "class_names",
    "description",
    "FINETUNE",
]


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _tiny():
    return models.build_model(
        "PanopticDeepLabPR",
        encoder="resnet18",
        encoder_width=8,
        num_classes=1,
        decoder_channels=16,
        stage4_stride=32,
    )


def _data(length=8):
    return PhantomDataset(
        2,
        image_size=96,
        length=length,
        augment=Augment(patch_size=64, scale=(1.0, 1.0), rotate=0.0, rot90=True),
        phantom_kwargs={"mito_radius": (4.0, 8.0), "mito_length": (0.0, 30.0)},
    )


def test_train_export_finetune_roundtrip(tmp_path):
    torch.manual_seed(0)
    ds = _data()
    model = _tiny()
    res = train(model, ds, epochs=1, batch_size=4)
    assert len(res.losses) == 2 and all(np.isfinite(p["total_loss"]) for p in res.losses)
    assert not model.training
    pth, cfg = export_model(
        model,
        tmp_path,
        "Tiny",
        norms=(0.6, 0.12),
        padding_factor=32,
        class_names={1: "mito"},
        description="test",
    )
    conf = yaml.safe_load(cfg.read_text())
    assert list(conf) == SPEC_KEYS
    assert conf["model"] == str(pth.resolve()) and conf["model_quantized"] is None
    assert conf["norms"] == {"mean": 0.6, "std": 0.12} and conf["class_names"] == {1: "mito"}
    assert conf["FINETUNE"]["criterion_params"]["mse_weight"] == 200
    scripted = models.load_model(pth, padding_factor=32)
    # the empanada finetune path trains the TorchScript model itself
    names = set_trainable_layers(scripted, "stage4")
    assert names and all(n.startswith("encoder.layer4.") for n in names)
    before = dict(scripted.named_parameters())["encoder.layer1.0.conv1.weight"].detach().clone()
    res = finetune(scripted, ds, finetune_layer="stage4", iterations=2, batch_size=4)
    assert len(res.losses) == 2
    after = dict(scripted.named_parameters())["encoder.layer1.0.conv1.weight"]
    assert torch.equal(before, after)
    img = ds.pool[0].image
    f1 = instance_f1(scripted, [(img, ds.pool[0].instances)], norms=(0.6, 0.12), padding_factor=32)
    assert 0.0 <= f1["f1"] <= 1.0 and f1["images"] == 1


def test_export_quantized_needs_calibration(tmp_path):
    with pytest.raises(InvalidArgumentError):
        export_model(_tiny(), tmp_path, "Q", norms=(0.5, 0.1), padding_factor=32, quantize=True)
    assert not any(tmp_path.iterdir())


def test_bundled_model_config_and_file():
    cfg_path = PKG / "configs" / "PhantomMito_v1.yaml"
    if not cfg_path.is_file():
        pytest.skip("the bundled PhantomMito_v1 is not installed in this checkout")
    conf = yaml.safe_load(cfg_path.read_text())
    assert list(conf) == SPEC_KEYS
    assert conf["thing_list"] == [1] and conf["labels"] == [1]
    assert conf["class_names"] == {1: "mito"}
    path = cfg_path.parent / conf["model"]  # relative to the config's directory
    assert conf["model"] == "../weights/PhantomMito_v1.pth"
    assert path.is_file() and path.stat().st_size < 8 * 2**20
    m = models.load_model(path, padding_factor=conf["padding_factor"])
    with torch.no_grad():
        out = m(torch.zeros(1, 1, 64, 96), 2, True)
    assert out["sem_logits"].shape == (1, 1, 64, 96) and out["offsets"].shape == (1, 2, 64, 96)
    if conf["model_quantized"]:
        assert (cfg_path.parent / conf["model_quantized"]).is_file()


def test_bundled_model_segments_fresh_phantoms():
    # A quality floor, not a timing: the shipped weights still segment phantoms they never
    # saw (evaluation seeds, as `evaluate_phantom`), float and int8, with the defaults.
    from empanada_rs.phantoms import phantom_2d

    cfg_path = PKG / "configs" / "PhantomMito_v1.yaml"
    if not cfg_path.is_file():
        pytest.skip("the bundled PhantomMito_v1 is not installed in this checkout")
    conf = yaml.safe_load(cfg_path.read_text())
    norms = (conf["norms"]["mean"], conf["norms"]["std"])
    samples = [
        (p.image, p.instances)
        for p in (phantom_2d((512, 512), seed=s) for s in range(1_000_000, 1_000_004))
    ]
    for key, floor in (("model", 0.9), ("model_quantized", 0.85)):
        m = torch.jit.load(str(cfg_path.parent / conf[key]), map_location="cpu")
        res = instance_f1(m, samples, norms=norms, padding_factor=conf["padding_factor"])
        assert res["f1"] >= floor, (key, res)
