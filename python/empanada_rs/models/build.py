"""Construct an architecture by name (the ``arch`` key of a model config, spec §9.2)."""

import inspect

from torch import nn

from empanada_rs.errors import InvalidArgumentError
from empanada_rs.models.bifpn import PanopticBiFPN, PanopticBiFPNPR
from empanada_rs.models.deeplab import PanopticDeepLab, PanopticDeepLabPR
from empanada_rs.models.resnet import ENCODERS

ARCHITECTURES: dict[str, type[nn.Module]] = {
    "PanopticDeepLab": PanopticDeepLab,
    "PanopticDeepLabPR": PanopticDeepLabPR,
    "PanopticBiFPN": PanopticBiFPN,
    "PanopticBiFPNPR": PanopticBiFPNPR,
}


def _accepted(cls: type[nn.Module]) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is nn.Module or not issubclass(klass, nn.Module):
            continue
        params = inspect.signature(klass.__init__).parameters
        names |= {n for n, p in params.items() if n != "self" and p.kind is p.POSITIONAL_OR_KEYWORD}
    return names


def build_model(arch: str, **kwargs: object) -> nn.Module:
    """A freshly initialised model of architecture ``arch`` (train mode, float).

    Args:
        arch: "PanopticDeepLab", "PanopticDeepLabPR", "PanopticBiFPN" or "PanopticBiFPNPR".
        **kwargs: the architecture's parameters (spec §10.2-10.4, plus ``encoder_width``).
    Raises InvalidArgumentError for an unknown arch, encoder or keyword.
    """
    if arch not in ARCHITECTURES:
        raise InvalidArgumentError(
            f"arch: unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}"
        )
    cls = ARCHITECTURES[arch]
    unknown = sorted(set(kwargs) - _accepted(cls))
    if unknown:
        raise InvalidArgumentError(
            f"{unknown[0]}: not a parameter of {arch}; accepted: {sorted(_accepted(cls))}"
        )
    encoder = kwargs.get("encoder", "resnet50")
    if encoder not in ENCODERS:
        raise InvalidArgumentError(
            f"encoder: {encoder!r} is not supported; choose one of {list(ENCODERS)}"
        )
    if "stage4_stride" in kwargs and kwargs["stage4_stride"] not in (16, 32):
        raise InvalidArgumentError(
            f"stage4_stride: must be 16 or 32, got {kwargs['stage4_stride']!r}"
        )
    return cls(**kwargs)
