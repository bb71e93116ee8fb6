"""Architectures: output contract (spec §2.2), training outputs, scripting, build_model."""

import pytest
import torch

from empanada_rs.errors import InvalidArgumentError
from empanada_rs.models import (
    ARCHITECTURES,
    PanopticBiFPNPR,
    PanopticDeepLabPR,
    build_model,
    script_model,
)

TINY_PDL = {"encoder_width": 8, "decoder_channels": 16}
TINY_BIFPN = {"encoder_width": 8, "fpn_dim": 16, "fpn_layers": 1}


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny(arch: str, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    base = TINY_BIFPN if "BiFPN" in arch else TINY_PDL
    return build_model(arch, **{**base, **kwargs})


def side(arch: str) -> int:
    # BiFPN needs multiples of 128 (P7 at 1/128), PDL multiples of 16
    return 128 if "BiFPN" in arch else 64


def check_eval_outputs(out, n, c, h, w, render_steps, interpolate_ins):
    assert set(out) == {"sem_logits", "ctr_hmp", "offsets"}
    scale = 2**render_steps / 4
    assert out["sem_logits"].shape == (n, c, int(h * scale), int(w * scale))
    hi, wi = (h, w) if interpolate_ins else (h // 4, w // 4)
    assert out["ctr_hmp"].shape == (n, 1, hi, wi)
    assert out["offsets"].shape == (n, 2, hi, wi)
    for t in out.values():
        assert t.dtype == torch.float32 and torch.isfinite(t).all()


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("num_classes", [1, 3])
def test_eval_contract_all_render_steps(arch, num_classes):
    model = tiny(arch, num_classes=num_classes, encoder="resnet18").eval()
    s = side(arch)
    x = torch.randn(1, 1, s, s)
    with torch.no_grad():
        for steps in range(4):
            for interp in (True, False):
                out = model(x, steps, interp)
                check_eval_outputs(out, 1, num_classes, s, s, steps, interp)


@pytest.mark.parametrize(
    "encoder,stride",
    [("resnet18", 16), ("resnet34", 16), ("resnet50", 16), ("resnet18", 32), ("resnet50", 32)],
)
def test_encoders_and_strides(encoder, stride):
    model = tiny("PanopticDeepLabPR", encoder=encoder, stage4_stride=stride).eval()
    assert model.encoder.widths[-1] == 8 * 8 * (4 if encoder == "resnet50" else 1)
    pyramid = model.encoder(torch.zeros(1, 1, 64, 64))
    assert [p.shape[-1] for p in pyramid] == [16, 16, 8, 4, 4 if stride == 16 else 2]
    with torch.no_grad():
        check_eval_outputs(model(torch.randn(1, 1, 64, 96)), 1, 1, 64, 96, 2, True)


def test_basic_block_dilation_is_used():
    # resnet18 with stage4_stride=16 (the reference raises): layer4 keeps 1/16 via dilation 2
    model = tiny("PanopticDeepLabPR", encoder="resnet18", stage4_stride=16)
    assert model.encoder.layer4[0].conv1.dilation == (2, 2)
    assert model.encoder.layer4[1].conv2.dilation == (2, 2)


@pytest.mark.parametrize("arch", ["PanopticDeepLabPR", "PanopticBiFPNPR"])
@pytest.mark.parametrize("num_classes", [1, 3])
def test_training_outputs(arch, num_classes):
    model = tiny(arch, num_classes=num_classes, encoder="resnet18", train_num_points=64).train()
    s = side(arch)
    out = model(torch.randn(2, 1, s, s))
    assert set(out) == {"sem_logits", "sem_points", "point_coords", "ctr_hmp", "offsets"}
    assert out["sem_logits"].shape == (2, num_classes, s, s)
    assert out["sem_points"].shape == (2, num_classes, 64)
    assert out["point_coords"].shape == (2, 64, 2)
    assert ((out["point_coords"] >= 0) & (out["point_coords"] <= 1)).all()
    assert out["ctr_hmp"].shape == (2, 1, s, s) and out["offsets"].shape == (2, 2, s, s)
    loss = sum(t.float().mean() for k, t in out.items() if k != "point_coords")
    loss.backward()
    assert model.semantic_pr.point_head.predictor.weight.grad is not None


@pytest.mark.parametrize("arch", ["PanopticDeepLab", "PanopticBiFPN"])
def test_training_outputs_without_pointrend(arch):
    s = side(arch)
    out = tiny(arch, encoder="resnet18").train()(torch.randn(2, 1, s, s))
    assert set(out) == {"sem_logits", "ctr_hmp", "offsets"}
    assert all(t.shape[-2:] == (s, s) for t in out.values())


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_scripted_matches_eager(arch):
    model = tiny(arch, encoder="resnet18", num_classes=3).eval()
    scripted = script_model(model)
    assert isinstance(scripted, torch.jit.ScriptModule)
    s = side(arch)
    x = torch.randn(1, 1, s, s)
    with torch.no_grad():
        for steps, interp in [(0, False), (2, True), (3, False)]:
            a, b = model(x, steps, interp), scripted(x, steps, interp)
            for k in a:
                torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    scripted.train()
    assert "sem_points" in scripted(torch.randn(2, 1, s, s)) or "PR" not in arch


def test_render_steps_zero_is_coarse_logits_and_refinement_touches_few_points():
    model = tiny("PanopticDeepLabPR", encoder="resnet18", subdivision_num_points=10).eval()
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        coarse = model(x, 0, False)["sem_logits"]
        one = model(x, 1, False)["sem_logits"]
        up = torch.nn.functional.interpolate(coarse, scale_factor=2.0, mode="bilinear")
    # only min(10, H*W) grid points differ from the plain bilinear upsampling
    assert int((one != up).sum()) <= 10


def test_uncertainty_conventions():
    from empanada_rs.models.point_rend import uncertain_grid_points, uncertainty

    binary = torch.tensor([[[[2.0, -0.1], [0.5, -3.0]]]])
    assert torch.equal(uncertainty(binary), -binary.abs())
    multi = torch.tensor([[[[3.0]], [[1.0]], [[2.5]]]])
    assert uncertainty(multi).item() == pytest.approx(-0.5)
    idx, coords = uncertain_grid_points(uncertainty(binary), 8192)
    assert idx.shape == (1, 4)  # min(8192, H*W)
    assert idx[0, 0].item() == 1  # |-0.1| is the most uncertain
    torch.testing.assert_close(coords[0, 0], torch.tensor([0.75, 0.25]))  # (x, y) cell centre


def test_head_init_small_normal():
    model = tiny("PanopticDeepLabPR", encoder="resnet18", decoder_channels=64)
    w = model.semantic_head.head[1].weight
    assert w.std().item() < 0.01
    assert model.semantic_decoder.fuse[0][0].sepconv[1].weight.std().item() < 0.01


def test_classes_exported():
    assert ARCHITECTURES["PanopticDeepLabPR"] is PanopticDeepLabPR
    assert ARCHITECTURES["PanopticBiFPNPR"] is PanopticBiFPNPR


@pytest.mark.parametrize(
    "arch,kwargs,param",
    [
        ("Unet", {}, "arch"),
        ("PanopticDeepLabPR", {"encoder": "regnety_6p4gf"}, "encoder"),
        ("PanopticDeepLabPR", {"stage4_stride": 8}, "stage4_stride"),
        ("PanopticBiFPN", {"aspp_dropout": 0.5}, "aspp_dropout"),
    ],
)
def test_build_model_bad_arguments(arch, kwargs, param):
    with pytest.raises(InvalidArgumentError, match=param):
        build_model(arch, **kwargs)
