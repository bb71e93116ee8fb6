"""script/save/load/validate_model: round trips, atomic writes, typed errors (spec §2)."""

import os

import pytest
import torch
from torch import nn

from empanada_rs.errors import EmpanadaError, ModelError
from empanada_rs.models import build_model, load_model, save_model, script_model, validate_model


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def pdl():
    torch.manual_seed(0)
    return build_model(
        "PanopticDeepLabPR", encoder="resnet18", encoder_width=8, decoder_channels=16
    ).eval()


def test_save_load_round_trip_identical(tmp_path, pdl):
    path = save_model(pdl, tmp_path / "m.pth")
    loaded = load_model(path)
    x = torch.randn(1, 1, 64, 80)
    with torch.no_grad():
        for steps, interp in [(0, False), (2, True), (3, True)]:
            a, b = pdl(x, steps, interp), loaded(x, steps, interp)
            assert a.keys() == b.keys()
            for k in a:
                assert torch.equal(a[k], b[k])
    assert pdl.training is False  # eval model stays as it was; script_model worked on a copy
    assert [p.name for p in tmp_path.iterdir()] == ["m.pth"]  # no temp file left behind


def test_script_model_leaves_training_model_in_train_mode(pdl):
    pdl.train()
    try:
        scripted = script_model(pdl)
        assert pdl.training and not scripted.training
    finally:
        pdl.eval()


def test_save_scripted_and_bifpn_probe_fallback(tmp_path):
    model = build_model(
        "PanopticBiFPNPR", encoder="resnet18", encoder_width=8, fpn_dim=16, fpn_layers=1
    )
    path = save_model(script_model(model), tmp_path / "b.pth")
    # the default probe tries 16, then 128 (BiFPN needs multiples of 128)
    assert isinstance(load_model(path), torch.jit.ScriptModule)
    with pytest.raises(ModelError, match="padding_factor"):
        load_model(path, padding_factor=16)
    load_model(path, padding_factor=128)


def test_failed_save_keeps_existing_file(tmp_path, pdl):
    dest = tmp_path / "m.pth"
    dest.write_bytes(b"previous contents")

    class NotScriptable(nn.Module):
        def forward(self, x, *args):  # varargs cannot be scripted
            return x

    with pytest.raises(Exception):  # noqa: B017 - torch's own scripting error
        save_model(NotScriptable(), dest)
    assert dest.read_bytes() == b"previous contents"
    assert sorted(os.listdir(tmp_path)) == ["m.pth"]
    with pytest.raises(ModelError, match="does not exist"):
        save_model(pdl, tmp_path / "missing_dir" / "m.pth")


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "nope.pth")


def test_not_torchscript(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"this is not a zip archive")
    with pytest.raises(ModelError, match="TorchScript") as info:
        load_model(bad)
    assert isinstance(info.value, EmpanadaError) and isinstance(info.value, ValueError)
    state = tmp_path / "state.pth"
    torch.save({"w": torch.zeros(2)}, state)  # a plain checkpoint, not a scripted model
    with pytest.raises(ModelError, match="torch.jit.save"):
        load_model(state)


class _ReturnsTensor(nn.Module):
    def forward(self, x: torch.Tensor, render_steps: int = 2, interpolate_ins: bool = True):
        return x


class _MissingOffsets(nn.Module):
    def forward(
        self, x: torch.Tensor, render_steps: int = 2, interpolate_ins: bool = True
    ) -> dict[str, torch.Tensor]:
        return {"sem_logits": x, "ctr_hmp": x}


class _WrongShape(nn.Module):
    def forward(
        self, x: torch.Tensor, render_steps: int = 2, interpolate_ins: bool = True
    ) -> dict[str, torch.Tensor]:
        q = x[:, :, ::4, ::4]  # ignores render_steps / interpolate_ins
        return {"sem_logits": q, "ctr_hmp": q, "offsets": torch.cat([q, q], 1)}


class _NoRenderArgs(nn.Module):
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"sem_logits": x, "ctr_hmp": x, "offsets": torch.cat([x, x], 1)}


@pytest.mark.parametrize(
    "module,match",
    [
        (_ReturnsTensor(), "dict"),
        (_MissingOffsets(), "offsets"),
        (_WrongShape(), "shape"),
        (_NoRenderArgs(), "render_steps"),
    ],
)
def test_contract_violations(tmp_path, module, match):
    path = tmp_path / "x.pth"
    torch.jit.save(torch.jit.script(module), str(path))
    with pytest.raises(ModelError, match=match):
        load_model(path)
    with pytest.raises(ModelError):
        validate_model(torch.jit.load(str(path)), padding_factor=16)
    assert isinstance(load_model(path, validate=False), torch.jit.ScriptModule)
