# Hand-written stub of the compiled extension; `make test` checks it with mypy.stubtest.
# Each section belongs to one binding module (rust/empanada-py/src/<section>.rs).

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__version__: str

class EmpanadaError(ValueError): ...
class InvalidArgumentError(EmpanadaError): ...
class ShapeError(EmpanadaError): ...
class DTypeError(EmpanadaError): ...
class ContiguityError(EmpanadaError): ...
class NonFiniteError(EmpanadaError): ...
class LabelOverflowError(EmpanadaError): ...
class InternalError(EmpanadaError): ...

# --- panoptic ---

# --- rle ---

def rle_encode(labels: npt.NDArray[np.integer]) -> dict[str, object]: ...
def rle_decode(
    ids: npt.NDArray[np.integer],
    offsets: npt.NDArray[np.int64],
    starts: npt.NDArray[np.int64],
    runs: npt.NDArray[np.int64],
    shape: tuple[int, ...] | list[int],
    *,
    dtype: npt.DTypeLike = "uint32",
) -> npt.NDArray[np.integer]: ...
def rle_from_indices(
    indices: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
def rle_intersection(
    starts_a: npt.NDArray[np.int64],
    runs_a: npt.NDArray[np.int64],
    starts_b: npt.NDArray[np.int64],
    runs_b: npt.NDArray[np.int64],
) -> int: ...
def rle_iou(
    starts_a: npt.NDArray[np.int64],
    runs_a: npt.NDArray[np.int64],
    starts_b: npt.NDArray[np.int64],
    runs_b: npt.NDArray[np.int64],
) -> float: ...
def rle_ioa(
    starts_a: npt.NDArray[np.int64],
    runs_a: npt.NDArray[np.int64],
    starts_b: npt.NDArray[np.int64],
    runs_b: npt.NDArray[np.int64],
) -> float: ...
def rle_union(
    rles: Sequence[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
def rle_vote(
    rles: Sequence[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]],
    thr: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...

# --- components ---

def connected_components(
    labels: npt.NDArray[np.integer] | npt.NDArray[np.bool_],
    *,
    connectivity: int | None = None,
    binary: bool = False,
) -> tuple[npt.NDArray[np.uint32], int]: ...

# --- labels ---

# --- median ---
