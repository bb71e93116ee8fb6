"""Training and finetuning of panoptic models (spec §11): targets, augmentations, losses,
datasets, train/finetune loops, evaluation and export. Needs torch, scipy and PyYAML."""

from empanada_rs.training.augment import Augment
from empanada_rs.training.datasets import (
    InstanceDirDataset,
    PhantomDataset,
    read_image_8bit,
    read_mask,
)
from empanada_rs.training.evaluate import instance_f1, predict_instances
from empanada_rs.training.export import default_finetune_config, export_model, write_config
from empanada_rs.training.loop import (
    FINETUNE_LAYERS,
    Progress,
    TrainResult,
    finetune,
    optimizer_param_groups,
    set_trainable_layers,
    train,
)
from empanada_rs.training.losses import BootstrapCE, PanopticLoss, point_sample
from empanada_rs.training.targets import heatmap_and_offsets, panoptic_semantic

__all__ = [
    "FINETUNE_LAYERS",
    "Augment",
    "BootstrapCE",
    "InstanceDirDataset",
    "PanopticLoss",
    "PhantomDataset",
    "Progress",
    "TrainResult",
    "default_finetune_config",
    "export_model",
    "finetune",
    "heatmap_and_offsets",
    "instance_f1",
    "optimizer_param_groups",
    "panoptic_semantic",
    "point_sample",
    "predict_instances",
    "read_image_8bit",
    "read_mask",
    "set_trainable_layers",
    "train",
    "write_config",
]
