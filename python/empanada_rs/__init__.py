"""empanada-rs: panoptic segmentation of organelles in volume EM with a Rust core.

The kernels live in the compiled extension ``empanada_rs._core``; this package re-exports
them under stable names and adds the pieces that are Python by nature.
"""

from empanada_rs import _core
from empanada_rs._core import (
    ChunkPainter,
    Segmentation,
    SliceMedianFilter,
    StackPipeline,
    chunks_touched,
    connected_components,
    dilate_labels,
    erode_labels,
    erode_mask,
    fill_holes,
    find_instance_centers,
    label_statistics,
    linear_sum_assignment,
    match_instances,
    match_slices,
    median_filter_slices,
    orthoplane_consensus,
    paint_block,
    paint_into,
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
    stitch_tiles,
    tile_layout,
    tile_overlap_rle,
)
from empanada_rs.errors import (
    ContiguityError,
    DTypeError,
    EmpanadaError,
    InternalError,
    InvalidArgumentError,
    LabelOverflowError,
    NonFiniteError,
    OutputExistsError,
    ShapeError,
)
from empanada_rs.io import write_labels_numpy, write_labels_zarr

__version__: str = _core.__version__

#: Public names whose modules import torch: loaded on first use, so ``import empanada_rs``
#: stays light.
_LAZY = {
    "segment_2d": "empanada_rs.inference.engine2d",
    "Segmentation2D": "empanada_rs.inference.engine2d",
    "segment_3d": "empanada_rs.inference.engine3d",
    "Segment3dResult": "empanada_rs.inference.engine3d",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'empanada_rs' has no attribute {name!r}")


__all__ = [
    "ChunkPainter",
    "ContiguityError",
    "DTypeError",
    "EmpanadaError",
    "InternalError",
    "InvalidArgumentError",
    "LabelOverflowError",
    "NonFiniteError",
    "OutputExistsError",
    "Segmentation",
    "Segment3dResult",
    "Segmentation2D",
    "ShapeError",
    "SliceMedianFilter",
    "StackPipeline",
    "__version__",
    "chunks_touched",
    "connected_components",
    "dilate_labels",
    "erode_labels",
    "erode_mask",
    "fill_holes",
    "find_instance_centers",
    "label_statistics",
    "linear_sum_assignment",
    "match_instances",
    "match_slices",
    "median_filter_slices",
    "orthoplane_consensus",
    "paint_block",
    "paint_into",
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
    "segment_2d",
    "segment_3d",
    "stitch_tiles",
    "tile_layout",
    "tile_overlap_rle",
    "write_labels_numpy",
    "write_labels_zarr",
]
