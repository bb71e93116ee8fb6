"""Static post-training quantization (spec §8.2)."""

import pytest
import torch

from empanada_rs.errors import InvalidArgumentError
from empanada_rs.models import build_model, load_model, quantize_model, save_model, script_model


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _images(n: int, side: int, seed: int) -> list[torch.Tensor]:
    """Smooth blob images (normalised) so activations resemble EM crops, not white noise."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        x = torch.randn(1, 1, side // 8, side // 8, generator=g)
        x = torch.nn.functional.interpolate(x, size=(side, side), mode="bicubic")
        out.append((x - x.mean()) / x.std())
    return out


def _model(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if "BiFPN" in arch:
        kwargs = {"fpn_dim": 16, "fpn_layers": 1}
    else:
        kwargs = {"decoder_channels": 16}
    model = build_model(arch, encoder="resnet18", encoder_width=16, **kwargs)
    # heads initialised at N(0, 0.001) give ~0 logits; widen them so the masks are non-trivial
    for name, p in model.named_parameters():
        if "head" in name and p.dim() > 1:
            p.data.normal_(0, 0.2)
    model.train()
    with torch.no_grad():  # BN statistics from image-like inputs
        model(torch.cat(_images(4, 128, 1)))  # a batch: BiFPN's P7 is 1x1 at 128 px
    return model.eval()


@pytest.mark.parametrize("arch", ["PanopticDeepLabPR", "PanopticBiFPNPR"])
def test_quantized_contract_and_agreement(tmp_path, arch):
    model = _model(arch)
    qmodel = quantize_model(model, _images(4, 128, 2))
    assert isinstance(qmodel, torch.jit.ScriptModule)
    assert not any(m.__class__.__name__ == "QuantStub" for m in model.modules())  # untouched
    x = _images(1, 128, 3)[0]
    with torch.no_grad():
        for steps, interp in [(0, False), (2, True), (3, True)]:
            ref, out = model(x, steps, interp), qmodel(x, steps, interp)
            assert ref.keys() == out.keys()
            for k in ref:
                assert out[k].shape == ref[k].shape and out[k].dtype == torch.float32
        agree = ((ref["sem_logits"] > 0) == (out["sem_logits"] > 0)).float().mean().item()
    assert agree > 0.9
    path = save_model(qmodel, tmp_path / "q.pth")
    loaded = load_model(path)
    with torch.no_grad():
        again = loaded(x, 3, True)
    for k in out:
        torch.testing.assert_close(again[k], out[k])


def test_what_is_quantized_pdl():
    qmodel = quantize_model(_model("PanopticDeepLabPR"), _images(2, 64, 2))
    names = {name: m.original_name for name, m in qmodel.named_modules()}
    assert names["encoder.conv1"] == "ConvReLU2d" and "Quantize" == names["quant"]
    quantized = {n.split(".")[0] for n, m in qmodel.named_modules() if _is_quantized(m)}
    assert {"encoder", "semantic_decoder", "instance_decoder", "semantic_head", "ins_center"} <= (
        quantized
    )
    assert "ins_xy" not in quantized and "semantic_pr" not in quantized


def test_what_is_quantized_bifpn():
    qmodel = quantize_model(_model("PanopticBiFPNPR"), _images(2, 128, 2))
    quantized = {n.split(".")[0] for n, m in qmodel.named_modules() if _is_quantized(m)}
    assert quantized == {"encoder"}


def _is_quantized(module: torch.jit.ScriptModule) -> bool:
    # quantized modules keep their packed parameters in a "_packed_params" attribute
    return hasattr(module, "_packed_params") or module.original_name == "QFunctional"


def test_bad_arguments():
    model = _model("PanopticDeepLabPR")
    with pytest.raises(InvalidArgumentError, match="calibration"):
        quantize_model(model, [])
    with pytest.raises(InvalidArgumentError, match="model"):
        quantize_model(script_model(model), _images(1, 64, 0))
    with pytest.raises(InvalidArgumentError, match="backend"):
        quantize_model(model, _images(1, 64, 0), backend="tensorrt")
