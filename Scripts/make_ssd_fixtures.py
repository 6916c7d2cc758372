"""Reference values for Ocelli's SSD pieces, computed by torchvision's own SSD code.

Writes Tests/OcelliDetectionTests/Fixtures/ssd_reference.json:
  - SSD300's default boxes (torchvision's DefaultBoxGenerator with the VOC and the COCO scale
    sets, steps 8…300, clip) in float64: the count and every 29th box (cx, cy, w, h);
  - a small layout (64x64 input, maps 4, 2, 1) in full;
  - matching and encoding on it: torchvision's SSDMatcher(0.5) on box_iou, then
    BoxCoder(weights=(10, 10, 5, 5)).encode_single (variances 0.1, 0.2) of the matched truths;
  - the MultiBox loss of random offsets and logits: torchvision's SSD.compute_loss
    (hard negatives 3:1, smooth L1 with beta 1, both terms over the matched boxes).

torchvision's Python code is used as it is; only its compiled operators (NMS, ROI pooling),
which the PyPI wheel builds against CUDA torch and which none of the code above calls, are
left unregistered so that the package imports with the CPU torch wheel.

Run in a scratch venv outside the repository:
  pip install "torch==2.13.0+cpu" numpy pillow && pip install --no-deps torchvision==0.28.0
  python Scripts/make_ssd_fixtures.py
"""
import json
import math
import os
import types

import numpy as np
import torch
import torch.library

# The wheel's compiled operators cannot register against the CPU torch: skip them.
_impl = torch.library.Library.impl


def _tolerant_impl(self, *args, **kwargs):
    try:
        return _impl(self, *args, **kwargs)
    except RuntimeError:
        return None


torch.library.Library.impl = _tolerant_impl
_register_fake = torch.library.register_fake


def _tolerant_register_fake(*args, **kwargs):
    try:
        return _register_fake(*args, **kwargs)
    except Exception:
        return lambda f: f


torch.library.register_fake = _tolerant_register_fake

import torchvision  # noqa: E402
from torchvision.models.detection import _utils as det_utils  # noqa: E402
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator  # noqa: E402
from torchvision.models.detection.ssd import SSD  # noqa: E402
from torchvision.ops import box_iou  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "OcelliDetectionTests", "Fixtures", "ssd_reference.json")
rng = np.random.default_rng(17)
D64 = torch.float64


def f32(x):
    """float32-representable values, handed to torch as float64 (Ocelli reads them as Float)."""
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def grid_boxes(generator, maps, image):
    return generator._grid_default_boxes([[f, f] for f in maps], [image, image], dtype=D64)


fixture = {"reference": "torchvision %s (DefaultBoxGenerator, SSDMatcher, BoxCoder, SSD.compute_loss), torch %s"
           % (torchvision.__version__, torch.__version__)}

# SSD300, both scale sets.
ssd300 = {}
for name, scales in [("voc", [0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05]), ("coco", [0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05])]:
    g = DefaultBoxGenerator([[2], [2, 3], [2, 3], [2, 3], [2], [2]], scales=scales, steps=[8, 16, 32, 64, 100, 300], clip=True)
    g._wh_pairs = g._generate_wh_pairs(6, dtype=D64)
    boxes = grid_boxes(g, [38, 19, 10, 5, 3, 1], 300)
    ssd300[name] = {"count": int(boxes.shape[0]), "every": 29, "boxes": boxes[::29].tolist()}
fixture["ssd300"] = ssd300

# A small layout, in full.
small = {"image": 64, "maps": [4, 2, 1], "scales": [0.2, 0.45, 0.7, 0.95], "ratios": [[2], [2, 3], [2]], "steps": [16, 32, 64]}
g = DefaultBoxGenerator(small["ratios"], scales=small["scales"], steps=small["steps"], clip=True)
g._wh_pairs = g._generate_wh_pairs(3, dtype=D64)
centers = grid_boxes(g, small["maps"], small["image"])
small["boxes"] = centers.tolist()
corners = torch.cat([centers[:, :2] - 0.5 * centers[:, 2:], centers[:, :2] + 0.5 * centers[:, 2:]], dim=1)
D = centers.shape[0]

# Truths (corners, fractions of the image) and labels (1…4) for two images, and a third without.
truth_sets = [
    (f32([[0.05, 0.10, 0.40, 0.55], [0.50, 0.45, 0.95, 0.90], [0.30, 0.30, 0.42, 0.38]]), [1, 3, 2]),
    (f32([[0.10, 0.55, 0.30, 0.95], [0.20, 0.05, 0.90, 0.45]]), [4, 2]),
    (f32(np.zeros((0, 4))), []),
]
classes = 4
matcher = det_utils.SSDMatcher(0.5)
coder = det_utils.BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
images, matched_idxs, targets = [], [], []
for boxes, labels in truth_sets:
    gt = torch.tensor(boxes, dtype=D64).reshape(-1, 4)
    if gt.shape[0] == 0:
        m = torch.full((D,), -1, dtype=torch.int64)
    else:
        m = matcher(box_iou(gt, corners))
    fg = torch.where(m >= 0)[0]
    enc = torch.zeros((D, 4), dtype=D64)
    if fg.numel():
        enc[fg] = coder.encode_single(gt[m[fg]], corners[fg])
    lab = torch.zeros((D,), dtype=torch.int64)
    if fg.numel():
        lab[fg] = torch.tensor(labels, dtype=torch.int64)[m[fg]]
    images.append({"truths": boxes.tolist(), "labels": labels, "matches": m.tolist(), "classes": lab.tolist(),
                   "offsets": enc.tolist()})
    matched_idxs.append(m)
    targets.append({"boxes": gt, "labels": torch.tensor(labels, dtype=torch.int64)})
small["images"] = images

# The loss on random predictions.
n = len(truth_sets)
loc = torch.tensor(f32(rng.normal(0, 1.5, (n, D, 4))), dtype=D64)
conf = torch.tensor(f32(rng.normal(0, 2.0, (n, D, classes + 1))), dtype=D64)
fake = types.SimpleNamespace(box_coder=coder, neg_to_pos_ratio=3)
losses = SSD.compute_loss(fake, targets, {"bbox_regression": loc, "cls_logits": conf}, [corners] * n, matched_idxs)
small["loss"] = {"locations": loc.tolist(), "confidences": conf.tolist(), "classes": classes,
                 "bbox_regression": float(losses["bbox_regression"]), "classification": float(losses["classification"])}
fixture["small"] = small

with open(OUT, "w") as f:
    json.dump(fixture, f, separators=(",", ":"))
print("wrote", os.path.normpath(OUT), "default boxes:", {k: v["count"] for k, v in ssd300.items()}, "small:", D,
      "loss:", small["loss"]["bbox_regression"], small["loss"]["classification"])
