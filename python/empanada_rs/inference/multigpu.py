"""Several devices, one worker process each (spec §7, with design §3's fixes).

The parent reads slices and hands batches round-robin to the workers; each worker holds its
own copy of the model on its device, normalises, downsamples (``render_steps`` follows the
downsampling, unlike the reference's multi-GPU path) and runs the model; the parent puts the
outputs back in slice order and pushes them into the Rust stack pipelines, whose threads
post-process in parallel with the workers. No process group or NCCL is needed: workers
never talk to each other."""

from __future__ import annotations

import io
import multiprocessing as mp
import os
import queue
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from empanada_rs.errors import EmpanadaError, InvalidArgumentError
from empanada_rs.inference.runner import ModelHandle, ModelOutputs, ModelRunner, render_steps_for
from empanada_rs.inference.stack import Params3d, Timings, prepare_slices
from empanada_rs.io.readers import VolumeSource

#: Batches in flight per worker: enough to keep each busy while the parent reads.
IN_FLIGHT = 2


class WorkerError(EmpanadaError):
    """A device worker process failed; the message carries its traceback."""


def _serialize_module(module: torch.nn.Module) -> tuple[str, bytes]:
    buf = io.BytesIO()
    if isinstance(module, torch.jit.ScriptModule):
        torch.jit.save(module, buf)
        return "script", buf.getvalue()
    torch.save(module, buf)
    return "pickle", buf.getvalue()


def _load_module(kind: str, blob: bytes, device: torch.device) -> torch.nn.Module:
    buf = io.BytesIO(blob)
    if kind == "script":
        return torch.jit.load(buf, map_location=device)
    module: torch.nn.Module = torch.load(buf, map_location=device, weights_only=False)
    return module


def _worker(
    rank: int,
    device: str,
    model: tuple[str, bytes],
    config: dict[str, Any],
    params: Params3d,
    value_range: tuple[float, float],
    threads: int,
    inbox: Any,
    outbox: Any,
) -> None:
    try:
        torch.set_num_threads(threads)
        dev = torch.device(device)
        module = _load_module(*model, dev).to(dev)
        handle = ModelHandle(module=module, config=config, device=dev)
        runner = ModelRunner(handle)
        steps = render_steps_for(params.downsampling)
        while True:
            item = inbox.get()
            if item is None:
                return
            key, slices = item
            images = prepare_slices(slices, value_range, handle.norms, params.downsampling)
            outs = runner.predict(
                images, render_steps=steps, interpolate_ins=params.fine_boundaries
            )
            outbox.put((key, [(o.sem, o.ctr_hmp, o.offsets) for o in outs]))
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises
        outbox.put(("error", f"worker {rank} on {device}:\n{traceback.format_exc()}"))


def check_devices(devices: Sequence[str | torch.device]) -> list[str]:
    """Validates a device list: each one available here (``cpu`` may repeat, for tests)."""
    from empanada_rs.inference.runner import resolve_device

    if isinstance(devices, str) or not devices:
        raise InvalidArgumentError(
            f"devices: {devices!r}; pass a non-empty list such as ['cuda:0', 'cuda:1']"
        )
    out = [str(resolve_device(d)) for d in devices]
    gpus = [d for d in out if d != "cpu"]
    if len(set(gpus)) != len(gpus):
        raise InvalidArgumentError(f"devices: {out} names a GPU twice; list each device once")
    return out


class MultiDevicePredictor:
    """A :class:`~empanada_rs.inference.stack.SlicePredictor` over worker processes, one
    per device. Use as a context manager (workers start on entry, stop on exit)."""

    def __init__(
        self,
        handle: ModelHandle,
        params: Params3d,
        value_range: tuple[float, float],
        devices: Sequence[str | torch.device],
    ) -> None:
        self.handle = handle
        self.params = params
        self.value_range = value_range
        self.devices = check_devices(devices)
        self._procs: list[Any] = []
        self._inboxes: list[Any] = []
        self._outbox: Any = None

    def __enter__(self) -> MultiDevicePredictor:
        ctx = mp.get_context("spawn")
        model = _serialize_module(self.handle.module)
        config = dict(self.handle.config)
        n_cpu = sum(1 for d in self.devices if d == "cpu")
        threads = max(1, (os.cpu_count() or 1) // max(1, n_cpu))
        self._outbox = ctx.Queue()
        for rank, dev in enumerate(self.devices):
            inbox = ctx.Queue()
            proc = ctx.Process(
                target=_worker,
                args=(
                    rank,
                    dev,
                    model,
                    config,
                    self.params,
                    self.value_range,
                    threads,
                    inbox,
                    self._outbox,
                ),
                daemon=True,
            )
            proc.start()
            self._procs.append(proc)
            self._inboxes.append(inbox)
        return self

    def __exit__(self, *exc: object) -> None:
        for inbox in self._inboxes:
            inbox.put(None)
        for proc in self._procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
                proc.join()
        self._procs, self._inboxes = [], []

    def _receive(self) -> tuple[Any, Any]:
        while True:
            try:
                key, payload = self._outbox.get(timeout=1.0)
            except queue.Empty:
                dead = [p for p in self._procs if not p.is_alive()]
                if dead:
                    raise WorkerError(
                        f"devices: worker process exited with code {dead[0].exitcode}"
                    ) from None
                continue
            if key == "error":
                raise WorkerError(payload)
            return key, payload

    def outputs(
        self, source: VolumeSource, plane: str, timings: Timings, tick: Callable[[int], None]
    ) -> Iterator[ModelOutputs]:
        if not self._procs:
            raise InvalidArgumentError("MultiDevicePredictor: use it inside a `with` block")
        n = source.n_slices(plane)
        bs = self.params.batch_size
        starts = list(range(0, n, bs))
        w = len(self._procs)
        sent = 0
        done: dict[int, list[tuple[Any, Any, Any]]] = {}
        for b in range(len(starts)):
            # Keep the workers fed: up to IN_FLIGHT batches each beyond the one we wait on.
            while sent < len(starts) and sent < b + IN_FLIGHT * w:
                t0 = time.perf_counter()
                start = starts[sent]
                slices = source.read_block(plane, start, min(n, start + bs))
                timings.io_s += time.perf_counter() - t0
                self._inboxes[sent % w].put(((plane, sent), slices))
                sent += 1
            t0 = time.perf_counter()
            while b not in done:
                (_, idx), outs = self._receive()
                done[idx] = outs
            timings.model_s += time.perf_counter() - t0
            outs = done.pop(b)
            for sem, ctr, off in outs:
                yield ModelOutputs(sem=sem, ctr_hmp=ctr, offsets=off)
            tick(len(outs))
