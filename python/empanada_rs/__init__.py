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
    fill_holes,
    find_instance_centers,
    label_statistics,
    linear_sum_assignment,
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


def __getattr__(name: str) -> object:
    # The engines import torch: load them on first use only.
    if name == "segment_3d":
        from empanada_rs.inference.engine3d import segment_3d

        return segment_3d
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
    "ShapeError",
    "SliceMedianFilter",
    "StackPipeline",
    "__version__",
    "chunks_touched",
    "connected_components",
    "fill_holes",
    "find_instance_centers",
    "label_statistics",
    "linear_sum_assignment",
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
    "stitch_tiles",
    "tile_layout",
    "tile_overlap_rle",
    "write_labels_numpy",
    "write_labels_zarr",
]
