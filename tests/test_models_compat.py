"""Compatibility with empanada's model files, both ways (design §4).

empanada's plugin-facing TorchScript models (scripted Quantizable*PR, float) load through our
load_model and their state dicts load strictly into our classes with identical outputs; our
files run in empanada's own engine and in a process that has never imported empanada_rs.
"""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from empanada_rs.models import build_model, load_model, save_model

pytestmark = pytest.mark.reference
empanada = pytest.importorskip("empanada")


@pytest.fixture(autouse=True)
def _quiet():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
    torch.set_num_threads(n)


def _randomise(model: torch.nn.Module) -> None:
    """Non-trivial BN statistics and head weights so that output equality means something."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1, generator=g)
            m.running_var.uniform_(0.5, 1.5, generator=g)
            m.weight.data.uniform_(0.5, 1.5, generator=g)
    for name, p in model.named_parameters():
        if "weights" in name:  # BiFPN fusion weights
            p.data.uniform_(0.2, 2.0, generator=g)
        elif any(s in name for s in ("head", "decoder", "point", "fpn")):
            p.data.normal_(0, 0.05, generator=g)


def _quantizable_resnet18(monkeypatch) -> None:
    """empanada's quantizable encoders only offer resnet50; register a resnet18 built from its
    own quantizable basic block so the scripted test files stay small and fast."""
    import empanada.models.quantization.encoders as qenc
    import empanada.models.quantization.panoptic_deeplab as qpdl
    from empanada.models.quantization.encoders.resnet import QuantizableBasicBlock

    def resnet18(**kwargs):
        return qenc.QuantizableResNet(QuantizableBasicBlock, [2, 2, 2, 2], **kwargs)

    monkeypatch.setattr(qenc, "resnet18", resnet18, raising=False)
    monkeypatch.setattr(qpdl, "backbones", sorted({*qpdl.backbones, "resnet18"}))


def _reference_model(arch: str, encoder: str):
    from empanada.models.quantization.panoptic_bifpn import QuantizablePanopticBiFPNPR
    from empanada.models.quantization.panoptic_deeplab import QuantizablePanopticDeepLabPR

    torch.manual_seed(0)
    if arch == "PanopticDeepLabPR":
        ref = QuantizablePanopticDeepLabPR(
            quantize=False,
            encoder=encoder,
            num_classes=1,
            stage4_stride=32 if encoder == "resnet18" else 16,
            decoder_channels=16,
            low_level_stages=[1],
            low_level_channels_project=[32],
            atrous_rates=[2, 4, 6],
            ins_decoder=True,
        )
        ours = {
            "encoder": encoder,
            "decoder_channels": 16,
            "stage4_stride": 32 if encoder == "resnet18" else 16,
        }
    else:
        ref = QuantizablePanopticBiFPNPR(
            quantize=False,
            encoder=encoder,
            num_classes=3,
            fpn_dim=16,
            fpn_layers=2,
            ins_decoder=True,
            depthwise=True,
        )
        ours = {"encoder": encoder, "num_classes": 3, "fpn_dim": 16, "fpn_layers": 2}
    return ref, ours


@pytest.mark.parametrize("arch", ["PanopticDeepLabPR", "PanopticBiFPNPR"])
def test_mitonet_sized_state_dict_names_and_shapes(arch):
    # resnet50 as in MitoNet_v1 / MitoNet_v1_mini (eager reference, no scripting needed)
    ref, our_kwargs = _reference_model(arch, "resnet50")
    ours = build_model(arch, **our_kwargs)
    ref_sd, our_sd = ref.state_dict(), ours.state_dict()
    assert ref_sd.keys() == our_sd.keys()
    assert all(ref_sd[k].shape == our_sd[k].shape for k in ref_sd)
    ours.load_state_dict(ref_sd, strict=True)


def _reference_file(tmp_path, arch: str):
    ref, ours = _reference_model(arch, "resnet18")
    _randomise(ref)
    scripted = torch.jit.script(ref.eval())
    path = tmp_path / f"{arch}_ref.pth"
    torch.jit.save(scripted, str(path))
    return path, ours


@pytest.mark.parametrize("arch", ["PanopticDeepLabPR", "PanopticBiFPNPR"])
def test_empanada_file_loads_and_state_dict_matches(tmp_path, monkeypatch, arch):
    _quantizable_resnet18(monkeypatch)
    path, our_kwargs = _reference_file(tmp_path, arch)
    module = load_model(path)  # validates the contract with a probe
    model = build_model(arch, **our_kwargs).eval()
    result = model.load_state_dict(module.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    side = 128 if "BiFPN" in arch else 64
    x = torch.randn(1, 1, side, side)
    with torch.no_grad():
        for steps, interp in [(0, False), (2, True), (3, False)]:
            a, b = module(x, steps, interp), model(x, steps, interp)
            assert a.keys() == b.keys()
            for k in a:
                torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6)
            assert a["sem_logits"].abs().max() > 1e-3  # not trivially zero


def test_plain_reference_resnet18_state_dict_loads():
    from empanada.models import PanopticDeepLabPR as RefPDLPR

    ref = RefPDLPR(
        encoder="resnet18",
        stage4_stride=32,  # the reference's basic block cannot dilate
        decoder_channels=16,
        low_level_stages=[1],
        low_level_channels_project=[32],
        ins_decoder=True,
    )
    ours = build_model(
        "PanopticDeepLabPR", encoder="resnet18", stage4_stride=32, decoder_channels=16
    )
    sd = ref.state_dict()
    assert set(sd) == set(ours.state_dict())
    ours.load_state_dict(sd, strict=True)


@pytest.fixture(scope="module")
def our_file(tmp_path_factory):
    torch.manual_seed(1)
    model = build_model(
        "PanopticDeepLabPR", encoder="resnet18", encoder_width=8, decoder_channels=16
    ).eval()
    _randomise(model)
    path = tmp_path_factory.mktemp("ours") / "ours.pth"
    save_model(model, path)
    return path, model


def test_our_file_runs_in_empanada_engine(our_file):
    from empanada.inference.engines import PanopticDeepLabRenderEngine

    path, model = our_file
    module = torch.jit.load(str(path))
    engine = PanopticDeepLabRenderEngine(module, thing_list=[1], padding_factor=16)
    image = torch.randn(1, 1, 60, 70)
    pan = engine(image, size=(60, 70))
    assert tuple(pan.shape[-2:]) == (60, 70)
    pan_up = engine(image, size=(120, 140), upsampling=2)  # render_steps = 3
    assert tuple(pan_up.shape[-2:]) == (120, 140)
    out = engine.infer(torch.zeros(1, 1, 64, 64))
    assert out["sem"].shape == (1, 1, 64, 64) and out["ctr_hmp"].shape == (1, 1, 16, 16)


def test_our_file_loads_without_empanada_rs(our_file, tmp_path):
    path, model = our_file
    x = torch.randn(1, 1, 64, 64)
    np.save(tmp_path / "x.npy", x.numpy())
    script = (
        "import json, sys, numpy as np, torch\n"
        f"m = torch.jit.load({str(path)!r})\n"
        f"x = torch.from_numpy(np.load({str(tmp_path / 'x.npy')!r}))\n"
        "out = m(x, 2, False)\n"
        f"np.save({str(tmp_path / 'sem.npy')!r}, out['sem_logits'].detach().numpy())\n"
        "print(json.dumps({'rs': 'empanada_rs' in sys.modules,"
        " 'keys': sorted(out), 'ctr': list(out['ctr_hmp'].shape)}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info == {
        "rs": False,
        "keys": ["ctr_hmp", "offsets", "sem_logits"],
        "ctr": [1, 1, 16, 16],
    }
    with torch.no_grad():
        expected = model(x, 2, False)["sem_logits"].numpy()
    # a fresh process may use another thread count: equal up to float summation order
    np.testing.assert_allclose(np.load(tmp_path / "sem.npy"), expected, rtol=1e-5, atol=1e-7)
