"""TorchScript export, loading and contract validation of model files (spec §2)."""

import copy
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from empanada_rs.errors import ModelError

# probe sizes tried when the caller does not know the model's padding factor: the public
# models need 16 (MitoNet), 128 (BiFPN models, MitoNet mini) or 512 (NucleoNet, DropNet)
_PROBE_SIZES = (16, 128, 512)


def script_model(model: nn.Module) -> torch.jit.ScriptModule:
    """An eval-mode TorchScript copy of ``model`` (the model itself is left untouched).

    Args:
        model: an eager model, or an already scripted one (returned in eval mode).
    """
    if isinstance(model, torch.jit.ScriptModule):
        return model.eval()
    return torch.jit.script(copy.deepcopy(model).eval())


def save_model(model: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Script ``model`` (unless already scripted) and ``torch.jit.save`` it to ``path``.

    The file is written next to ``path`` under a temporary name and renamed into place, so a
    failure never leaves a truncated file nor damages an existing one.

    Args:
        model: eager or scripted model.
        path: destination file; its directory must exist.
    Returns the destination path.
    """
    dest = Path(path)
    if not dest.parent.is_dir():
        raise ModelError(f"path: directory {str(dest.parent)!r} does not exist; create it first")
    scripted = script_model(model)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        torch.jit.save(scripted, tmp)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def _check_outputs(out: object, h: int, w: int, render_steps: int, interpolate: bool) -> None:
    if not isinstance(out, dict):
        raise ModelError(
            f"model: forward returned {type(out).__name__}, expected a dict with sem_logits, "
            "ctr_hmp and offsets; export the model with a PointRend architecture "
            "(e.g. PanopticDeepLabPR) through save_model"
        )
    missing = [k for k in ("sem_logits", "ctr_hmp", "offsets") if k not in out]
    if missing:
        raise ModelError(
            f"model: outputs lack {missing}; a model file must return sem_logits, ctr_hmp "
            "and offsets (spec §2.2)"
        )
    scale = 2.0**render_steps / 4.0
    hs, ws = int(h * scale), int(w * scale)
    hi, wi = (h, w) if interpolate else (h // 4, w // 4)
    expected = {"sem_logits": (hs, ws), "ctr_hmp": (hi, wi), "offsets": (hi, wi)}
    channels = {"ctr_hmp": 1, "offsets": 2}
    for key, (eh, ew) in expected.items():
        t = out[key]
        if not isinstance(t, torch.Tensor) or t.dim() != 4 or not t.is_floating_point():
            raise ModelError(f"model: output {key} must be a 4-D float tensor (spec §2.2)")
        if tuple(t.shape[2:]) != (eh, ew) or t.shape[0] != 1:
            raise ModelError(
                f"model: output {key} has shape {tuple(t.shape)} for a 1x1x{h}x{w} input "
                f"with render_steps={render_steps}, interpolate_ins={interpolate}; expected "
                f"[1, C, {eh}, {ew}] (spec §2.2)"
            )
        if key in channels and t.shape[1] != channels[key]:
            raise ModelError(
                f"model: output {key} has {t.shape[1]} channels, expected {channels[key]}"
            )
    if out["sem_logits"].shape[1] == 2:
        raise ModelError(
            "model: sem_logits has 2 channels; binary models have 1, multi-class ones n+1 >= 3"
        )


def validate_model(module: nn.Module, padding_factor: int | None = 16) -> None:
    """Run a tiny zero probe through ``module`` and check the outputs against spec §2.2.

    Args:
        module: a scripted (or eager) model; it is put in eval mode.
        padding_factor: probe side length; None tries 16, 128 and 512 in turn and accepts the
            first size the model runs on (default 16).
    Raises ModelError naming what is wrong.
    """
    module.eval()
    sizes = _PROBE_SIZES if padding_factor is None else (int(padding_factor),)
    try:
        device = next(iter(module.parameters())).device
    except StopIteration:
        device = torch.device("cpu")
    last: Exception | None = None
    for size in sizes:
        x = torch.zeros(1, 1, size, size, device=device)
        try:
            with torch.no_grad():
                full = module(x, 2, True)
                coarse = module(x, 0, False)
        except Exception as err:  # noqa: BLE001 - any failure of the probe is reported below
            last = err
            continue
        _check_outputs(full, size, size, 2, True)
        _check_outputs(coarse, size, size, 0, False)
        return
    raise ModelError(
        f"model: a 1x1x{sizes[-1]}x{sizes[-1]} probe call forward(x, render_steps, "
        f"interpolate_ins) failed ({type(last).__name__}: {str(last).strip()[:300]}); model "
        "files must take (x, render_steps: int, interpolate_ins: bool) — pass the config's "
        "padding_factor or re-export the model with save_model"
    )


def load_model(
    path: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    *,
    padding_factor: int | None = None,
    validate: bool = True,
) -> torch.jit.ScriptModule:
    """Load a TorchScript model file (ours or empanada's, float or quantized) in eval mode.

    Args:
        path: the ``.pth`` TorchScript archive.
        device: where to map it (default "cpu").
        padding_factor: side of the validation probe; None tries 16, 128, 512 (default None).
        validate: run the contract probe (default True).
    Raises ModelError when the file is missing, is not TorchScript, or breaks the contract.
    """
    p = Path(path)
    if not p.is_file():
        raise ModelError(
            f"path: model file {str(p)!r} does not exist; check the path or the registry "
            "entry (download the model first)"
        )
    try:
        module = torch.jit.load(str(p), map_location=device)
    except Exception as err:
        raise ModelError(
            f"path: {str(p)!r} is not a loadable TorchScript model ({type(err).__name__}); "
            "model files must be saved with torch.jit.save (use save_model / export)"
        ) from err
    module.eval()
    if validate:
        validate_model(module, padding_factor)
    return module
