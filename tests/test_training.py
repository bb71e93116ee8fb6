"""Training pieces: targets, augmentations, losses, datasets, loops (with a tiny stand-in
model; the real architectures are tested in test_training_models.py)."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from empanada_rs.errors import InvalidArgumentError, OutputExistsError, ShapeError
from empanada_rs.training import (
    Augment,
    BootstrapCE,
    InstanceDirDataset,
    PanopticLoss,
    PhantomDataset,
    finetune,
    heatmap_and_offsets,
    panoptic_semantic,
    set_trainable_layers,
    train,
)
from empanada_rs.training.targets import _gaussian_kernel

pytestmark = pytest.mark.usefixtures("torch_one_thread")


# ---------------------------------------------------------------- targets


def test_targets_hand_computed():
    m = np.zeros((6, 7), np.int32)
    m[1:3, 1:4] = 5  # centroid (1.5, 2.0)
    m[4, 6] = 9  # single pixel: centroid (4, 6)
    hmp, off = heatmap_and_offsets(m, sigma=1.0)
    assert hmp.shape == (1, 6, 7) and off.shape == (2, 6, 7)
    assert off[0, 1, 1] == pytest.approx(0.5) and off[1, 1, 1] == pytest.approx(1.0)
    assert off[0, 2, 3] == pytest.approx(-0.5) and off[1, 2, 3] == pytest.approx(-1.0)
    assert off[:, 4, 6].tolist() == [0.0, 0.0]
    assert np.all(off[:, m == 0] == 0)
    # peaks at the floored centroids; the maximum is 1
    assert hmp.max() == pytest.approx(1.0)
    assert hmp[0, 1, 2] == pytest.approx(hmp[0, 4, 6], rel=1e-3)
    assert hmp[0, 1, 2] > hmp[0, 2, 2]


def _oracle_heatmap(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Slow NumPy oracle: per-instance centroids, explicit 2D kernel, zero border."""
    h, w = mask.shape
    peaks = np.zeros((h, w))
    for i in np.unique(mask[mask > 0]):
        ys, xs = np.nonzero(mask == i)
        peaks[int(ys.mean()), int(xs.mean())] = 1
    k1 = _gaussian_kernel(sigma)
    k = np.outer(k1, k1)
    r = len(k1) // 2
    padded = np.pad(peaks, r)
    out = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            out[y, x] = (padded[y : y + 2 * r + 1, x : x + 2 * r + 1] * k).sum()
    return out / out.max() if out.max() > 0 else out


def test_targets_against_numpy_oracle_and_opencv():
    rng = np.random.default_rng(0)
    m = np.zeros((40, 50), np.int64)
    for i in range(1, 6):
        y, x = rng.integers(0, 35), rng.integers(0, 45)
        m[y : y + rng.integers(2, 6), x : x + rng.integers(2, 6)] = i * 7
    hmp, off = heatmap_and_offsets(m, sigma=3.0)
    np.testing.assert_allclose(hmp[0], _oracle_heatmap(m, 3.0), atol=1e-6)
    cv2 = pytest.importorskip("cv2")
    peaks = np.zeros(m.shape, np.float32)
    for i in np.unique(m[m > 0]):
        ys, xs = np.nonzero(m == i)
        peaks[int(ys.mean()), int(xs.mean())] = 1
    ref = cv2.GaussianBlur(peaks, (0, 0), sigmaX=3.0, sigmaY=3.0, borderType=cv2.BORDER_CONSTANT)
    np.testing.assert_allclose(hmp[0], ref / ref.max(), atol=1e-5)
    for i in np.unique(m[m > 0]):
        ys, xs = np.nonzero(m == i)
        np.testing.assert_allclose(off[0][m == i], ys.mean() - ys, atol=1e-5)
        np.testing.assert_allclose(off[1][m == i], xs.mean() - xs, atol=1e-5)


def test_targets_empty_and_bad_input():
    hmp, off = heatmap_and_offsets(np.zeros((8, 8), np.uint16))
    assert not hmp.any() and not off.any()
    with pytest.raises(ShapeError):
        heatmap_and_offsets(np.zeros((2, 8, 8), np.int32))
    with pytest.raises(InvalidArgumentError):
        heatmap_and_offsets(np.zeros((8, 8), np.int32), sigma=0)


def test_panoptic_semantic():
    m = np.array([[0, 1001, 2001], [2002, 3001, 0]])
    cls, inst = panoptic_semantic(m, labels=[1, 2, 3], thing_list=[2], label_divisor=1000)
    assert cls.tolist() == [[0, 1, 2], [2, 3, 0]]
    assert inst.tolist() == [[0, 0, 2001], [2002, 0, 0]]
    with pytest.raises(InvalidArgumentError):
        panoptic_semantic(m, labels=[1, 2], thing_list=[2], label_divisor=1000)


# ---------------------------------------------------------------- augmentations


def test_augment_keeps_image_and_mask_paired():
    rng = np.random.default_rng(1)
    mask = rng.integers(0, 20, (50, 70)).astype(np.int32)
    image = (mask * 10).astype(np.uint8)
    aug = Augment(patch_size=32, scale=(1.0, 1.0), rotate=0, rot90=True, brightness=0, contrast=0)
    for _ in range(10):
        im, mk = aug(image, mask, rng)
        assert im.shape == mk.shape == (32, 32) and im.dtype == np.uint8
        assert np.array_equal(im, (mk * 10).astype(np.uint8))


def test_augment_default_pipeline_shapes_and_ids():
    rng = np.random.default_rng(2)
    mask = np.zeros((60, 60), np.int32)
    mask[10:30, 10:30], mask[35:50, 20:55] = 3, 8
    image = np.full((60, 60), 150, np.uint8)
    aug = Augment(patch_size=64)
    for _ in range(10):
        im, mk = aug(image, mask, rng)
        assert im.shape == mk.shape == (64, 64)
        assert set(np.unique(mk).tolist()) <= {0, 3, 8}
    a1 = Augment(patch_size=48)(image, mask, np.random.default_rng(5))
    a2 = Augment(patch_size=48)(image, mask, np.random.default_rng(5))
    assert np.array_equal(a1[0], a2[0]) and np.array_equal(a1[1], a2[1])


def test_augment_from_config_and_errors():
    cfg = [
        {"aug": "RandomScale", "scale_limit": [-0.9, 1]},
        {"aug": "PadIfNeeded", "min_height": 256, "min_width": 256, "border_mode": 0},
        {"aug": "RandomCrop", "height": 256, "width": 256},
        {"aug": "Rotate", "limit": 180, "border_mode": 0},
        {"aug": "RandomBrightnessContrast", "brightness_limit": 0.3, "contrast_limit": 0.3},
        {"aug": "HorizontalFlip"},
        {"aug": "VerticalFlip"},
    ]
    a = Augment.from_config(cfg, 256)
    assert a == Augment(patch_size=256)
    with pytest.raises(InvalidArgumentError):
        Augment.from_config([{"aug": "ElasticTransform"}], 256)
    with pytest.raises(InvalidArgumentError):
        Augment(scale=(0.0, 1.0))
    with pytest.raises(ShapeError):
        Augment()(np.zeros((4, 4), np.uint8), np.zeros((5, 4), np.int32), np.random.default_rng())


# ---------------------------------------------------------------- losses


def test_bootstrap_ce_keeps_top_k():
    logits = torch.tensor([[[[-3.0, 0.0], [2.0, 5.0]]]])
    labels = torch.tensor([[[1.0, 1.0], [0.0, 1.0]]])
    per_px = F.binary_cross_entropy_with_logits(logits[:, 0], labels, reduction="none").ravel()
    top2 = per_px.sort(descending=True).values[:2].mean()
    assert BootstrapCE(0.5)(logits, labels) == pytest.approx(float(top2), rel=1e-6)
    assert BootstrapCE(1.0)(logits, labels) == pytest.approx(float(per_px.mean()), rel=1e-6)
    mc = torch.randn(2, 3, 4, 4)
    lab = torch.randint(0, 3, (2, 4, 4))
    per = F.cross_entropy(mc, lab, reduction="none").ravel()
    assert BootstrapCE(0.25)(mc, lab) == pytest.approx(
        float(per.sort(descending=True).values[:8].mean()), rel=1e-5
    )


def test_panoptic_loss_parts_and_weights():
    torch.manual_seed(0)
    b, h, w = 2, 8, 8
    sem = torch.zeros(b, h, w)
    sem[0, 2:5, 2:5] = 1
    tgt = {"sem": sem, "ctr_hmp": torch.rand(b, 1, h, w), "offsets": torch.randn(b, 2, h, w)}
    coords = torch.rand(b, 5, 2)
    out = {
        "sem_logits": torch.randn(b, 1, h, w),
        "ctr_hmp": torch.rand(b, 1, h, w),
        "offsets": torch.randn(b, 2, h, w),
        "sem_points": torch.randn(b, 1, 5),
        "point_coords": coords,
    }
    total, parts = PanopticLoss()(out, tgt)
    mse = F.mse_loss(out["ctr_hmp"], tgt["ctr_hmp"])
    fg = (sem > 0).unsqueeze(1)
    l1 = ((out["offsets"] - tgt["offsets"]).abs() * fg).sum() / fg.sum()
    # nearest label at each point: pixel floor(c * size)
    iy, ix = (coords[..., 1] * h).long(), (coords[..., 0] * w).long()
    lab = torch.stack([sem[i, iy[i], ix[i]] for i in range(b)])[:, None]
    pr = F.binary_cross_entropy_with_logits(out["sem_points"], lab)
    ce = BootstrapCE(0.2)(out["sem_logits"], sem)
    assert parts["mse"] == pytest.approx(float(mse), rel=1e-5)
    assert parts["l1"] == pytest.approx(float(l1), rel=1e-5)
    assert parts["pointrend_ce"] == pytest.approx(float(pr), rel=1e-5)
    expect = ce + 200 * mse + 0.01 * l1 + pr
    assert float(total) == pytest.approx(float(expect), rel=1e-5)
    tgt["sem"] = torch.zeros(b, h, w)
    _, parts = PanopticLoss()(out, tgt)
    assert parts["l1"] == 0.0


# ---------------------------------------------------------------- a tiny stand-in model


class _Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.layer1 = nn.Conv2d(8, 8, 3, padding=1)
        self.layer2 = nn.Conv2d(8, 8, 3, padding=1)
        self.layer3 = nn.Conv2d(8, 8, 3, padding=1)
        self.layer4 = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = F.relu(layer(x))
        return x


class TinyPanoptic(nn.Module):
    """Same outputs as a PointRend panoptic model, a few thousand parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = _Encoder()
        self.bn = nn.BatchNorm2d(8)
        self.semantic_head = nn.Conv2d(8, 1, 1)
        self.ins_center = nn.Conv2d(8, 1, 1)
        self.ins_xy = nn.Conv2d(8, 2, 1)

    def forward(self, x, render_steps: int = 2, interpolate_ins: bool = True):
        f = self.bn(self.encoder(x))
        sem = self.semantic_head(f)
        out = {"sem_logits": sem, "ctr_hmp": self.ins_center(f), "offsets": 10 * self.ins_xy(f)}
        if self.training:
            coords = torch.rand(x.shape[0], 16, 2)
            grid = (2 * coords - 1).unsqueeze(2)
            out["sem_points"] = F.grid_sample(sem, grid, align_corners=False).squeeze(3)
            out["point_coords"] = coords
        return out


def _phantoms(n_images=2, length=8, patch=64):
    return PhantomDataset(
        n_images,
        image_size=96,
        length=length,
        augment=Augment(patch_size=patch, scale=(0.8, 1.2)),
        phantom_kwargs={"mito_radius": (4.0, 8.0), "mito_length": (0.0, 30.0)},
    )


def test_phantom_dataset_items():
    ds = _phantoms()
    img, tgt = ds[0]
    assert img.shape == (1, 64, 64) and img.dtype == torch.float32
    assert tgt["sem"].shape == (64, 64) and tgt["ctr_hmp"].shape == (1, 64, 64)
    assert tgt["offsets"].shape == (2, 64, 64)
    assert set(torch.unique(tgt["sem"]).tolist()) <= {0.0, 1.0}


def test_loss_decreases_on_a_fixed_batch():
    torch.manual_seed(0)
    ds = _phantoms(length=4)
    items = [ds[i] for i in range(4)]
    x = torch.stack([i for i, _ in items])
    tgt = {k: torch.stack([t[k] for _, t in items]) for k in items[0][1]}
    model = TinyPanoptic()
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    crit = PanopticLoss()
    losses = []
    for _ in range(15):
        loss, _ = crit(model(x), tgt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0]


def test_trainable_layers_match_resnet_names():
    m = TinyPanoptic()
    on = set(set_trainable_layers(m, "stage3"))
    assert on == {f"encoder.layer{i}.{p}" for i in (3, 4) for p in ("weight", "bias")}
    assert not m.encoder.conv1.weight.requires_grad and m.ins_xy.weight.requires_grad
    assert set_trainable_layers(m, "none") == []
    assert len(set_trainable_layers(m, "all")) == 10
    with pytest.raises(InvalidArgumentError):
        set_trainable_layers(m, "layer3")


def test_train_one_epoch_and_finetune_smoke(tmp_path):
    torch.manual_seed(0)
    ds = _phantoms(length=8)
    model = TinyPanoptic()
    seen, vals = [], []
    res = train(
        model,
        ds,
        epochs=2,
        batch_size=4,
        callback=lambda p: seen.append(p) and None,
        validate=lambda m: vals.append(m.training) or {"f1": 0.5},
        checkpoint=tmp_path / "ckpt.pth.tar",
        checkpoint_extra={"norms": [0.5, 0.1]},
    )
    assert len(res.losses) == 4 and res.validations == [(1, {"f1": 0.5}), (2, {"f1": 0.5})]
    assert vals == [False, False]  # validated in eval mode
    steps = [p.step for p in seen if p.validation is None]
    assert steps == [1, 2, 3, 4] and seen[-1].validation == {"f1": 0.5}
    ck = torch.load(tmp_path / "ckpt.pth.tar", weights_only=False)
    assert ck["epoch"] == 2 and ck["norms"] == [0.5, 0.1]
    before = model.encoder.layer1.weight.detach().clone()
    head = model.ins_xy.weight.detach().clone()
    res = finetune(model, ds, finetune_layer="none", iterations=2, batch_size=4)
    assert len(res.losses) == 2
    assert torch.equal(before, model.encoder.layer1.weight)
    assert not torch.equal(head, model.ins_xy.weight)
    # a callback returning False stops early
    res = train(model, ds, epochs=3, batch_size=4, callback=lambda p: False)
    assert res.stopped and len(res.losses) == 1


def test_train_bad_arguments():
    ds = _phantoms(length=4)
    with pytest.raises(InvalidArgumentError):
        train(TinyPanoptic(), ds, epochs=1, batch_size=8)
    with pytest.raises(InvalidArgumentError):
        train(TinyPanoptic(), ds, batch_size=2)
    with pytest.raises(InvalidArgumentError):
        train(TinyPanoptic(), ds, epochs=1, iterations=3, batch_size=2)


# ---------------------------------------------------------------- directory dataset


def _write_dir(root, sources):
    tifffile = pytest.importorskip("tifffile")
    for name, n in sources.items():
        (root / name / "images").mkdir(parents=True)
        (root / name / "masks").mkdir(parents=True)
        for k in range(n):
            img = np.full((40, 40), 100 + k, np.uint8)
            mask = np.zeros((40, 40), np.int32)
            mask[5:15, 5:15] = 1
            mask[20:30, 20:35] = 2
            tifffile.imwrite(root / name / "images" / f"p{k}.tiff", img)
            tifffile.imwrite(root / name / "masks" / f"p{k}.tiff", mask)


def test_instance_dir_dataset(tmp_path):
    _write_dir(tmp_path, {"a": 3, "b": 1})
    ds = InstanceDirDataset(tmp_path, augment=Augment(patch_size=32), weight_gamma=0.7)
    assert len(ds) == 4
    w = ds.sample_weights()
    # per-source weights (1/count)^gamma normalised over sources, repeated per image
    assert w[0] == w[1] == w[2] and w[0] + w[3] == pytest.approx(1.0)
    assert w[3] / w[0] == pytest.approx(3**0.7)
    img, tgt = ds[0]
    assert img.shape == (1, 32, 32) and tgt["offsets"].shape == (2, 32, 32)
    plain = InstanceDirDataset(tmp_path)
    img, tgt = plain[3]
    assert img.shape == (1, 40, 40) and float(tgt["sem"].sum()) == 250.0
    assert np.allclose(plain.sample_weights(), 0.25)


def test_instance_dir_dataset_errors(tmp_path):
    with pytest.raises(InvalidArgumentError):
        InstanceDirDataset(tmp_path / "missing")
    with pytest.raises(InvalidArgumentError):
        InstanceDirDataset(tmp_path)  # empty
    _write_dir(tmp_path, {"a": 1})
    (tmp_path / "a" / "masks" / "p0.tiff").unlink()
    with pytest.raises(InvalidArgumentError):
        InstanceDirDataset(tmp_path)


def test_export_refuses_to_overwrite(tmp_path):
    models = pytest.importorskip("empanada_rs.models")
    assert hasattr(models, "save_model")
    from empanada_rs.training import export_model

    (tmp_path / "m.yaml").write_text("keep")
    with pytest.raises(OutputExistsError):
        export_model(TinyPanoptic(), tmp_path, "m", norms=(0.5, 0.1), padding_factor=16)
    assert (tmp_path / "m.yaml").read_text() == "keep"
