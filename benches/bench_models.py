"""Float vs statically quantized (int8, spec §8.2) CPU inference of MitoNet-sized models.

    PYTHONPATH=python python benches/bench_models.py [--sizes 256 512] [--repeats 5]

The models are untrained (no weights are downloaded): heads are widened and BN statistics
taken from real EM crops so that the semantic masks are non-trivial; the agreement figure is
the fraction of pixels whose semantic decision (logit > 0) is the same float vs int8 on
held-out 256x256 EM crops.  Timings: median of alternating repeats, batch 1, render_steps=2.
"""

import argparse
import warnings

import numpy as np
import torch
from _common import alternate, machine

from empanada_rs.models import build_model, quantize_model, script_model

DATA = "../shared/data/vnc_sstem_mito_dev.npz"
MEAN, STD = 0.57571, 0.12765  # MitoNet norms


def em_crops(n: int, side: int, seed: int) -> torch.Tensor:
    images = np.load(DATA)["image"]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        z = rng.integers(images.shape[0])
        y, x = rng.integers(0, images.shape[1] - side, size=2)
        crop = images[z, y : y + side, x : x + side].astype(np.float32) / 255.0
        out.append((crop - MEAN) / STD)
    return torch.from_numpy(np.stack(out)[:, None])


def conditioned(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(arch)  # MitoNet defaults: resnet50, decoder 256 / fpn 128
    for name, p in model.named_parameters():
        if ("head" in name or "decoder" in name) and p.dim() > 1:
            p.data.normal_(0, 0.05)
    model.train()
    with torch.no_grad():
        model(em_crops(8, 256, 0))
    return model.eval()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--arch", nargs="+", default=["PanopticDeepLabPR", "PanopticBiFPNPR"])
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    print(f"machine: {machine()}, torch {torch.__version__}, {args.threads} threads")
    rows = []
    for arch in args.arch:
        model = conditioned(arch)
        fmodel = script_model(model)
        qmodel = quantize_model(model, [em_crops(2, 256, 100 + i) for i in range(8)])
        engine = torch.backends.quantized.engine
        test = em_crops(8, 256, 7)
        with torch.no_grad():
            agree = []
            for x in test:
                a = fmodel(x[None])["sem_logits"] > 0
                b = qmodel(x[None])["sem_logits"] > 0
                agree.append((a == b).float().mean().item())
            fg = float(np.mean([(fmodel(x[None])["sem_logits"] > 0).float().mean() for x in test]))
        for side in args.sizes:
            x = em_crops(1, side, 3)
            with torch.no_grad():
                fmodel(x), qmodel(x)  # warm up
                t = alternate(
                    {
                        "float": lambda f=fmodel, x=x: f(x),
                        "int8": lambda q=qmodel, x=x: q(x),
                    },
                    args.repeats,
                )
            mvx = side * side / 1e6
            rows.append((arch, side, t["float"], t["int8"], mvx, float(np.mean(agree)), fg, engine))
    print()
    print(
        "| model | size | float s | int8 s | float MPx/s | int8 MPx/s | speed-up | sem agreement"
        " (256², fg frac) | engine |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for arch, side, tf, tq, mvx, agree, fg, engine in rows:
        print(
            f"| {arch} | {side}² | {tf:.3f} | {tq:.3f} | {mvx / tf:.2f} | {mvx / tq:.2f} | "
            f"{tf / tq:.2f}x | {agree * 100:.2f} % ({fg:.2f}) | {engine} |"
        )


if __name__ == "__main__":
    main()
