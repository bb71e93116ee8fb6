# Hand-written stub of the compiled extension; `make test` checks it with mypy.stubtest.
# Each section belongs to one binding module (rust/empanada-py/src/<section>.rs).

from collections.abc import Sequence
from typing import Any, final

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

def _panic_in_kernel_for_tests() -> None: ...

# --- panoptic ---

def panoptic_2d(
    sem: npt.NDArray[np.float32],
    ctr_hmp: npt.NDArray[np.float32],
    offsets: npt.NDArray[np.float32],
    *,
    thing_list: Sequence[int] = ...,
    label_divisor: int = 10000,
    confidence_thr: float = 0.5,
    nms_threshold: float = 0.1,
    nms_kernel: int = 3,
    stuff_area: int = 64,
    void_label: int = 0,
    force_connected: bool = True,
    upsampling: int = 1,
    crop: tuple[int, int] | None = None,
) -> npt.NDArray[np.int32]: ...
def find_instance_centers(
    ctr_hmp: npt.NDArray[np.float32], *, threshold: float = 0.1, nms_kernel: int = 3
) -> npt.NDArray[np.int64]: ...
def relabel_connected(
    panoptic: npt.NDArray[np.integer],
    *,
    thing_list: Sequence[int] = ...,
    label_divisor: int = 10000,
) -> npt.NDArray[np.integer]: ...

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
    out: npt.NDArray[np.uint32] | None = None,
) -> tuple[npt.NDArray[np.uint32], int]: ...

# --- labels ---

def relabel(
    labels: npt.NDArray[np.integer],
    keys: npt.ArrayLike,
    values: npt.ArrayLike,
    *,
    default: int | None = None,
    out: npt.NDArray[np.integer] | None = None,
) -> npt.NDArray[np.integer]: ...
def renumber(
    labels: npt.NDArray[np.integer],
    *,
    start: int = 1,
    out: npt.NDArray[np.integer] | None = None,
) -> tuple[npt.NDArray[np.integer], npt.NDArray[np.integer], npt.NDArray[np.integer]]: ...
def remove_small_objects(
    labels: npt.NDArray[np.integer], min_size: int
) -> npt.NDArray[np.integer]: ...
def remove_pancakes(labels: npt.NDArray[np.integer], min_span: int) -> npt.NDArray[np.integer]: ...
def fill_holes(labels: npt.NDArray[np.integer]) -> npt.NDArray[np.integer]: ...
def label_statistics(labels: npt.NDArray[np.integer]) -> dict[str, npt.NDArray[np.generic]]: ...

# --- morphology ---

def erode_mask(mask: npt.NDArray[np.bool_], steps: int) -> npt.NDArray[np.bool_]: ...
def erode_labels(labels: npt.NDArray[np.integer], steps: int) -> npt.NDArray[np.integer]: ...
def dilate_labels(labels: npt.NDArray[np.integer], steps: int) -> npt.NDArray[np.integer]: ...

# --- median ---

@final
class SliceMedianFilter:
    def __new__(cls, kernel_size: int = 3, *, mode: str = "recursive") -> SliceMedianFilter: ...
    @property
    def kernel_size(self) -> int: ...
    @property
    def mode(self) -> str: ...
    def push(self, array: npt.NDArray[np.float32]) -> list[tuple[int, npt.NDArray[np.float32]]]: ...
    def finish(self) -> list[tuple[int, npt.NDArray[np.float32]]]: ...

def median_filter_slices(
    stack: npt.NDArray[np.float32], kernel_size: int = 3, *, mode: str = "recursive"
) -> npt.NDArray[np.float32]: ...

# --- segmentation ---

@final
class Segmentation:
    """Per-class sparse 3D objects of one (z, y, x) volume."""

    @staticmethod
    def from_labels(
        volume: npt.NDArray[np.integer], class_id: int = 1, *, thing: bool = True
    ) -> Segmentation: ...
    @staticmethod
    def from_objects(
        shape: tuple[int, int, int],
        class_id: int,
        objects: dict[str, npt.NDArray[Any]],
        *,
        thing: bool = True,
    ) -> Segmentation: ...
    @staticmethod
    def combine(parts: Sequence[Segmentation]) -> Segmentation: ...
    @property
    def shape(self) -> tuple[int, int, int]: ...
    @property
    def class_ids(self) -> list[int]: ...
    def is_thing(self, class_id: int) -> bool: ...
    def n_objects(self, class_id: int) -> int: ...
    def objects(self, class_id: int) -> dict[str, npt.NDArray[Any]]: ...
    def statistics(self, class_id: int) -> dict[str, npt.NDArray[Any]]: ...
    def to_volume(self, class_id: int) -> npt.NDArray[np.int32]: ...
    def stack_volume(self) -> npt.NDArray[np.int32]: ...
    def apply_object_ops(
        self, *, erode: int = 0, dilate: int = 0, fill_holes: bool = False
    ) -> Segmentation: ...

# --- stack ---

@final
class StackPipeline:
    def __new__(
        cls,
        shape: tuple[int, int, int],
        plane: str = "xy",
        *,
        labels: Sequence[int] = ...,
        thing_list: Sequence[int] = ...,
        label_divisor: int = 10000,
        confidence_thr: float = 0.5,
        nms_threshold: float = 0.1,
        nms_kernel: int = 3,
        stuff_area: int = 64,
        void_label: int = 0,
        upsampling: int = 1,
        median_kernel_size: int = 3,
        median_mode: str = "recursive",
        merge_iou_thr: float = 0.25,
        merge_ioa_thr: float = 0.25,
    ) -> StackPipeline: ...
    @property
    def n_pushed(self) -> int: ...
    def push(
        self,
        sem: npt.NDArray[np.float32],
        ctr_hmp: npt.NDArray[np.float32],
        offsets: npt.NDArray[np.float32],
    ) -> None: ...
    def finish(self, min_size: int = 500, min_extent: int = 5) -> Segmentation: ...

def match_slices(
    slices: npt.NDArray[np.integer],
    plane: str = "xy",
    *,
    label_divisor: int = 1048576,
    merge_iou_thr: float = 0.25,
    merge_ioa_thr: float = 0.25,
    min_size: int = 500,
    min_extent: int = 5,
) -> Segmentation: ...
def linear_sum_assignment(
    cost: npt.NDArray[np.float64], maximize: bool = False
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...

# --- consensus ---

def orthoplane_consensus(
    segs: Sequence[Segmentation],
    *,
    pixel_vote_thr: int = 2,
    cluster_iou_thr: float = 0.75,
    allow_one_view: bool = False,
    min_size: int = 500,
    min_extent: int = 5,
) -> Segmentation: ...

# --- tiles ---

def tile_layout(
    shape: tuple[int, int], tile_size: int, overlap: int | None = None
) -> list[tuple[int, int, int, int]]: ...
def tile_overlap_rle(
    shape: tuple[int, int], layout: Sequence[tuple[int, int, int, int]]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
def stitch_tiles(
    tiles: Sequence[npt.NDArray[np.integer]],
    layout: Sequence[tuple[int, int, int, int]],
    shape: tuple[int, int],
    *,
    labels: Sequence[int] = ...,
    thing_list: Sequence[int] = ...,
    label_divisor: int = 10000,
) -> npt.NDArray[np.uint32]: ...

# --- chunks ---

def paint_block(
    seg: Segmentation,
    class_id: int,
    origin: Sequence[int],
    shape: Sequence[int],
    *,
    dtype: Any = None,
    own_ids: bool = False,
) -> npt.NDArray[np.integer]: ...
def chunks_touched(
    seg: Segmentation, class_id: int, chunks: int | Sequence[int]
) -> npt.NDArray[np.int64]: ...
def paint_into(
    seg: Segmentation, class_id: int, out: npt.NDArray[np.integer], *, own_ids: bool = False
) -> None: ...

@final
class ChunkPainter:
    """The touched chunks of one class on a chunk grid, painted one at a time."""

    def __new__(
        cls,
        seg: Segmentation,
        class_id: int,
        chunks: int | Sequence[int],
        *,
        dtype: Any = None,
        own_ids: bool = False,
    ) -> ChunkPainter: ...
    @property
    def chunks(self) -> tuple[int, int, int]: ...
    @property
    def grid(self) -> tuple[int, int, int]: ...
    @property
    def dtype(self) -> str: ...
    def __len__(self) -> int: ...
    def touched(self) -> npt.NDArray[np.int64]: ...
    def block(self, i: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]: ...
    def paint(self, i: int) -> npt.NDArray[np.integer]: ...

# --- metrics ---

def match_instances(
    pred: npt.NDArray[np.integer], truth: npt.NDArray[np.integer], *, iou_thr: float = 0.5
) -> dict[str, Any]: ...
