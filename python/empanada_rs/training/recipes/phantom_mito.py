"""Recipe of the bundled model PhantomMito_v1: a small PanopticDeepLabPR (ResNet-18 at
width 16, decoder width 32, output stride 32) trained from scratch on generated 2D
phantoms (:mod:`empanada_rs.phantoms`) to segment mitochondria instances.

    python -m empanada_rs.training.recipes.phantom_mito --out DIR [--install]

The bundled files come from two stages: the defaults (128 px crops, 500 steps, 48
phantoms), then a second stage from those weights on larger crops, so that long
mitochondria fit a crop whole and their offsets point at one centre:

    python -m empanada_rs.training.recipes.phantom_mito --out STAGE1
    python -m empanada_rs.training.recipes.phantom_mito --out STAGE2 \
        --init STAGE1/PhantomMito_v1.pth --patch-size 256 --batch-size 8 \
        --iterations 2000 --max-lr 0.002 --n-images 200 --install

On 2 quiet CPU cores the first stage takes a few minutes and the second about 18.
Training phantoms use seeds 0..n_images-1, validation ones 900000+, and
`evaluate_phantom` uses 1000000+ by default, so the evaluation never sees training data.
Writes DIR/PhantomMito_v1.pth, DIR/PhantomMito_v1_quantized.pth, DIR/PhantomMito_v1.yaml
and DIR/train_log.json. `--install` also copies the model files to
`empanada_rs/weights/` and the config to `empanada_rs/configs/` (the config's `model`
paths, `../weights/...`, are relative to the directory of the config file, as the
registry resolves them).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

NAME = "PhantomMito_v1"
ARCH = {
    "arch": "PanopticDeepLabPR",
    "encoder": "resnet18",
    "encoder_width": 16,
    "num_classes": 1,
    "decoder_channels": 32,
    "stage4_stride": 32,
}
PADDING_FACTOR = 32  # output stride 32
VALIDATION_SEED = 900000
DESCRIPTION = (
    "PhantomMito_v1: mitochondria instance segmentation trained by empanada-rs on its own "
    "generated EM-like phantoms (empanada_rs.phantoms), PanopticDeepLabPR with a ResNet-18 "
    "encoder at width 16. A small offline demo model, not a substitute for MitoNet on real "
    "data; finetune it or MitoNet on your own annotations. Recipe: python -m "
    "empanada_rs.training.recipes.phantom_mito"
)


def main(argv: list[str] | None = None) -> int:
    from empanada_rs.models import build_model, validate_model
    from empanada_rs.phantoms import phantom_2d
    from empanada_rs.training import (
        Augment,
        PhantomDataset,
        export_model,
        instance_f1,
        train,
    )

    ap = argparse.ArgumentParser(
        prog="python -m empanada_rs.training.recipes.phantom_mito",
        description=__doc__.split("\n\n")[0],
    )
    ap.add_argument("--out", type=Path, required=True, help="output directory (created)")
    ap.add_argument("--iterations", type=int, default=500, help="optimiser steps (500)")
    ap.add_argument("--batch-size", type=int, default=8, help="images per step (8)")
    ap.add_argument("--patch-size", type=int, default=128, help="training crop side (128)")
    ap.add_argument("--n-images", type=int, default=48, help="training phantoms (48)")
    ap.add_argument("--image-size", type=int, default=512, help="phantom side (512)")
    ap.add_argument("--max-lr", type=float, default=0.003, help="OneCycle peak lr (0.003)")
    ap.add_argument("--val-images", type=int, default=3, help="validation phantoms (3)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--init",
        type=Path,
        default=None,
        help="start from the weights of this model file (a second stage) instead of scratch",
    )
    ap.add_argument("--no-quantized", action="store_true", help="skip the int8 model")
    ap.add_argument("--install", action="store_true", help="copy into the package")
    ap.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    # 25 steps an epoch (so validation, every epochs // 5, runs 5 times in 500 steps)
    steps_per_epoch = min(25, args.iterations)
    aug = Augment(
        patch_size=args.patch_size,
        scale=(0.8, 1.25),
        rotate=0.0,
        rot90=True,
        brightness=0.2,
        contrast=0.2,
        noise=4.0,
    )
    ds = PhantomDataset(
        args.n_images,
        image_size=args.image_size,
        length=steps_per_epoch * args.batch_size,
        augment=aug,
        seed=args.seed,
    )
    # Norms: mean over the training images of their mean and std (the train widget's
    # rule for uint8 data, spec §11.8), as fractions of 255.
    mean = float(np.mean([p.image.mean() for p in ds.pool]) / 255)
    std = float(np.mean([p.image.std() for p in ds.pool]) / 255)
    ds.norms = (mean, std)
    val = [
        (p.image, p.instances)
        for p in (
            phantom_2d((args.image_size, args.image_size), seed=VALIDATION_SEED + k)
            for k in range(args.val_images)
        )
    ]
    t_data = time.perf_counter() - t0
    print(f"data: {args.n_images} phantoms in {t_data:.1f} s; norms {mean:.5f} / {std:.5f}")

    arch = dict(ARCH)
    model = build_model(arch.pop("arch"), **arch)  # type: ignore[arg-type]
    if args.init is not None:
        model.load_state_dict(torch.jit.load(str(args.init), map_location="cpu").state_dict())
        print(f"model: weights from {args.init}")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {ARCH['arch']} {n_params / 1e6:.2f} M parameters")

    def progress(p):  # noqa: ANN001
        if p.validation is not None:
            print(f"  epoch {p.epoch + 1}/{p.epochs} validation {p.validation}", flush=True)
        elif p.step % 25 == 0 or p.step == 1:
            parts = " ".join(f"{k} {v:.4f}" for k, v in p.losses.items())
            print(
                f"  step {p.step}/{p.steps} lr {p.lr:.5f} {parts} ({p.elapsed_s:.0f} s)",
                flush=True,
            )

    def validate(m):  # noqa: ANN001
        return instance_f1(m, val, norms=(mean, std), padding_factor=PADDING_FACTOR)

    res = train(
        model,
        ds,
        iterations=args.iterations,
        batch_size=args.batch_size,
        max_lr=args.max_lr,
        seed=args.seed,
        callback=progress,
        validate=validate if args.val_images else None,
    )
    print(f"trained {len(res.losses)} steps in {res.elapsed_s:.0f} s")

    calib = None
    if not args.no_quantized:
        # 32 batches of training crops, as the reference calibrates (spec §8.2); 8 batches
        # of 4 left the int8 model's centre heatmap noisy enough to split objects.
        rng = np.random.default_rng(args.seed + 1)
        calib = [
            torch.stack([ds[int(i)][0] for i in rng.integers(0, len(ds), args.batch_size)])
            for _ in range(32)
        ]
    pth, cfg = export_model(
        model,
        args.out,
        NAME,
        norms=(mean, std),
        padding_factor=PADDING_FACTOR,
        thing_list=[1],
        labels=[1],
        class_names={1: "mito"},
        description=DESCRIPTION,
        quantize=not args.no_quantized,
        calibration=calib,
        # relative to the config file's directory (the registry's rule): the config is
        # installed to empanada_rs/configs/, the weights to empanada_rs/weights/
        model_ref=f"../weights/{NAME}.pth",
        overwrite=args.overwrite,
    )
    validate_model(torch.jit.load(str(pth)), padding_factor=PADDING_FACTOR)
    log = {
        "arch": ARCH,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "norms": [mean, std],
        "parameters": n_params,
        "train_s": round(res.elapsed_s, 1),
        "total_s": round(time.perf_counter() - t0, 1),
        "validations": res.validations,
        "final_losses": res.losses[-1],
        "torch": torch.__version__,
    }
    (args.out / "train_log.json").write_text(json.dumps(log, indent=2))
    print(f"wrote {pth}, {cfg}")
    if args.install:
        pkg = Path(__file__).resolve().parents[2]
        (pkg / "weights").mkdir(exist_ok=True)
        for f in args.out.glob(f"{NAME}*.pth"):
            shutil.copy2(f, pkg / "weights" / f.name)
        shutil.copy2(cfg, pkg / "configs" / cfg.name)
        print(f"installed into {pkg / 'weights'} and {pkg / 'configs'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
