"""Static post-training quantization for CPU inference (spec §8.2).

Panoptic-DeepLab: encoder, decoders, semantic and centre heads run int8; the offset head and
PointRend stay float.  BiFPN: the encoder only.  The result keeps the model contract
(``forward(x, render_steps, interpolate_ins)``, same output keys and shapes).
"""

import copy
from collections.abc import Iterable

import torch
from torch import nn
from torch.ao.quantization import DeQuantStub, QuantStub, convert, get_default_qconfig, prepare

from empanada_rs.errors import InvalidArgumentError


def default_backend() -> str:
    """``fbgemm`` where this torch build has it (x86), else ``qnnpack`` (ARM)."""
    engines = torch.backends.quantized.supported_engines
    return "fbgemm" if "fbgemm" in engines else "qnnpack"


def quantize_model(
    model: nn.Module, calibration: Iterable[torch.Tensor], backend: str | None = None
) -> torch.jit.ScriptModule:
    """Fuse, insert quant/dequant stubs, calibrate on ``calibration`` and convert to int8.

    Args:
        model: an eager float model built by :func:`build_model` (left untouched).
        calibration: batches ``float32 [B,1,H,W]``, normalised like inference inputs (the
            reference uses 32 batches of training crops).
        backend: "fbgemm", "x86" or "qnnpack"; None picks :func:`default_backend`.
    Returns the scripted quantized model; it also sets ``torch.backends.quantized.engine``.
    """
    if isinstance(model, torch.jit.ScriptModule) or not hasattr(model, "quantized_parts"):
        raise InvalidArgumentError(
            "model: quantize_model needs an eager model from build_model (load the file's "
            "state dict into build_model(...) first), not a scripted one"
        )
    backend = backend or default_backend()
    if backend not in torch.backends.quantized.supported_engines:
        raise InvalidArgumentError(
            f"backend: {backend!r} is not supported by this torch build; choose one of "
            f"{[e for e in torch.backends.quantized.supported_engines if e != 'none']}"
        )
    torch.backends.quantized.engine = backend
    qmodel = copy.deepcopy(model).cpu().eval()
    qmodel.fuse_model()
    qmodel.quant = QuantStub()
    qmodel.dequant = DeQuantStub()
    qconfig = get_default_qconfig(backend)
    for part in [*qmodel.quantized_parts(), qmodel.quant, qmodel.dequant]:
        part.qconfig = qconfig
    prepare(qmodel, inplace=True)
    seen = 0
    with torch.no_grad():
        for batch in calibration:
            qmodel(batch.float().cpu(), 0, False)
            seen += 1
    if seen == 0:
        raise InvalidArgumentError(
            "calibration: no batches given; pass an iterable of [B,1,H,W] float tensors"
        )
    convert(qmodel, inplace=True)
    return torch.jit.script(qmodel.eval())
