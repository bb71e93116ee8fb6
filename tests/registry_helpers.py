"""Shared pieces of the registry tests: an isolated home, tiny TorchScript models honouring
the model contract (spec §2.2) and config writers."""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from empanada_rs.registry import fetch, paths


class TinyModel(torch.nn.Module):
    """A 1x1 conv at 1/4 resolution standing in for a segmentation model, with the output
    sizes of the contract (sem_logits at H/4 * 2^render_steps, instance maps at H or H/4);
    ``kind`` tells files apart."""

    def __init__(self, kind: int, n_classes: int = 1) -> None:
        super().__init__()
        self.kind = kind
        self.n_classes = n_classes
        self.conv = torch.nn.Conv2d(1, n_classes + 3, 1)

    def forward(
        self, x: torch.Tensor, render_steps: int = 2, interpolate_ins: bool = True
    ) -> dict[str, torch.Tensor]:
        y = self.conv(torch.nn.functional.avg_pool2d(x, 4))
        c = self.n_classes
        h, w = y.shape[2], y.shape[3]
        scale = int(2**render_steps)
        sem = torch.nn.functional.interpolate(y[:, :c], size=[h * scale, w * scale])
        ins = y[:, c:]
        if interpolate_ins:
            ins = torch.nn.functional.interpolate(ins, size=[x.shape[2], x.shape[3]])
        return {"sem_logits": sem, "ctr_hmp": ins[:, :1], "offsets": ins[:, 1:]}


def save_model(path: Path, kind: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(torch.jit.script(TinyModel(kind)), str(path))
    return path


def config_dict(model: str = "model.pth", quantized: str | None = None, **extra: Any) -> dict:
    config: dict[str, Any] = {
        "model": model,
        "model_quantized": quantized,
        "norms": {"mean": 0.5, "std": 0.1},
        "padding_factor": 16,
        "thing_list": [1],
        "labels": [1],
        "class_names": {1: "mito"},
        "description": "a test model",
        "FINETUNE": {
            "dataset_class": "SingleClassInstanceDataset",
            "dataset_params": {"weight_gamma": 0.7},
        },
    }
    config.update(extra)
    return config


def write_yaml(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its content (to prove nothing changed)."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Isolated homes under tmp_path, the CWD there, and no network: only file:// URLs
    open; http(s) reachability answers from ``reachable_urls`` on the returned path's
    attribute-free convention (tests patch ``fetch.url_reachable`` themselves)."""
    monkeypatch.setenv("HOME", str(tmp_path / "userhome"))
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path / "rs"))
    monkeypatch.setenv(paths.EMPANADA_HOME_ENV, str(tmp_path / "empanada"))
    monkeypatch.chdir(tmp_path)
    real_open = fetch._open

    def no_network(url: str, method: str, timeout: float):  # type: ignore[no-untyped-def]
        if urllib.parse.urlparse(url).scheme != "file":
            raise AssertionError(f"test tried to reach the network: {url}")
        return real_open(url, method, timeout)

    monkeypatch.setattr(fetch, "_open", no_network)
    monkeypatch.setattr(fetch, "url_reachable", lambda url, timeout=10.0: False)
    torch.set_num_threads(1)
    return tmp_path
