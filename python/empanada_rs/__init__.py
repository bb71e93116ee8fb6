"""empanada-rs: panoptic segmentation of organelles in volume EM with a Rust core.

The kernels live in the compiled extension ``empanada_rs._core``; this package re-exports
them under stable names and adds the pieces that are Python by nature.
"""

from empanada_rs import _core
from empanada_rs._core import (
    Segmentation,
    SliceMedianFilter,
    StackPipeline,
    connected_components,
    fill_holes,
    find_instance_centers,
    label_statistics,
    linear_sum_assignment,
    match_slices,
    median_filter_slices,
    panoptic_2d,
    relabel,
    relabel_connected,
    remove_pancakes,
    remove_small_objects,
    renumber,
    rle_decode,
    rle_encode,
    rle_from_indices,
    rle_intersection,
    rle_ioa,
    rle_iou,
    rle_union,
    rle_vote,
)
from empanada_rs.errors import (
    ContiguityError,
    DTypeError,
    EmpanadaError,
    InternalError,
    InvalidArgumentError,
    LabelOverflowError,
    NonFiniteError,
    ShapeError,
)

__version__: str = _core.__version__

__all__ = [
    "ContiguityError",
    "DTypeError",
    "EmpanadaError",
    "InternalError",
    "InvalidArgumentError",
    "LabelOverflowError",
    "NonFiniteError",
    "Segmentation",
    "ShapeError",
    "SliceMedianFilter",
    "StackPipeline",
    "__version__",
    "connected_components",
    "fill_holes",
    "find_instance_centers",
    "label_statistics",
    "linear_sum_assignment",
    "match_slices",
    "median_filter_slices",
    "panoptic_2d",
    "relabel",
    "relabel_connected",
    "remove_pancakes",
    "remove_small_objects",
    "renumber",
    "rle_decode",
    "rle_encode",
    "rle_from_indices",
    "rle_intersection",
    "rle_ioa",
    "rle_iou",
    "rle_union",
    "rle_vote",
]
