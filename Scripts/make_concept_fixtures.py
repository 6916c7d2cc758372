#!/usr/bin/env python3
"""Reference values for the "Deep Concepts" layers, losses and builders (issue 7).

Run from the repository root with numpy, torch, torchvision and keras (TensorFlow backend):

    /work/venv/bin/python Scripts/make_concept_fixtures.py

Writes Tests/OcelliNNTests/Fixtures/concepts.json: one entry per case, every tensor in NHWC /
HWIO order (PyTorch's NCHW / OIHW tensors are permuted here), as {"shape": [...], "data": [...]}.
The tests read the file; CI needs no Python.
"""
import json
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(0)
rng = np.random.default_rng(7)
out = {}


def t(a):
    a = np.asarray(a, dtype=np.float32)
    return {"shape": list(a.shape), "data": [float(v) for v in a.reshape(-1)]}


def nhwc(x):  # torch NCHW -> numpy NHWC
    return x.detach().numpy().transpose(0, 2, 3, 1)


def nchw(a):  # numpy NHWC -> torch NCHW
    return torch.tensor(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))


def uniform(*shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


# --- Activations -------------------------------------------------------------------------
x = np.linspace(-4, 4, 33).astype(np.float32)
xt = torch.tensor(x)
import keras  # noqa: E402

keras.utils.set_random_seed(0)  # Keras' own initial weights in the fixtures: reproducible

out["activations"] = {
    "x": t(x),
    "gelu": t(F.gelu(xt)),
    "gelu_tanh": t(F.gelu(xt, approximate="tanh")),
    "silu": t(F.silu(xt)),
    "mish": t(F.mish(xt)),
    "elu_0.7": t(F.elu(xt, alpha=0.7)),
    "selu": t(F.selu(xt)),
    "hard_sigmoid_keras": t(keras.ops.convert_to_numpy(keras.activations.hard_sigmoid(x))),
    "hard_silu_keras": t(keras.ops.convert_to_numpy(keras.activations.hard_silu(x))),
    "gelu_keras_approximate": t(keras.ops.convert_to_numpy(keras.activations.gelu(x, approximate=True))),
    "relu6": t(F.relu6(xt)),
}
logits = uniform(3, 5, lo=-3, hi=3)
out["log_softmax"] = {"x": t(logits), "y": t(F.log_softmax(torch.tensor(logits), dim=-1))}

# PReLU with one slope per channel (PyTorch's num_parameters = C).
xp = uniform(2, 4, 5, 3)
prelu = torch.nn.PReLU(num_parameters=3)
with torch.no_grad():
    prelu.weight.copy_(torch.tensor([0.1, -0.2, 0.3]))
out["prelu"] = {"x": t(xp), "alpha": t(prelu.weight.detach().numpy()), "y": t(nhwc(prelu(nchw(xp))))}

# --- Convolutions ------------------------------------------------------------------------
def conv_transpose_case(n, h, w, c, o, k, stride, padding, output_padding, dilation=1):
    xin = uniform(n, h, w, c)
    wt = uniform(c, o, k, k) * 0.5  # torch: [in, out, kh, kw]
    b = uniform(o)
    y = F.conv_transpose2d(nchw(xin), torch.tensor(wt), torch.tensor(b), stride=stride, padding=padding,
                           output_padding=output_padding, dilation=dilation)
    return {"x": t(xin), "kernel": t(wt.transpose(2, 3, 1, 0)), "bias": t(b), "stride": stride,
            "padding": padding, "output_padding": output_padding, "dilation": dilation, "y": t(nhwc(y))}


out["conv_transpose"] = [
    conv_transpose_case(2, 3, 4, 3, 2, 3, 2, 1, 1),
    conv_transpose_case(1, 4, 3, 2, 3, 2, 3, 0, 0),
    conv_transpose_case(1, 3, 3, 2, 2, 3, 1, 1, 0),
    conv_transpose_case(1, 3, 4, 2, 3, 3, 2, 0, 1, dilation=2),
    conv_transpose_case(1, 5, 4, 3, 2, 4, 2, 2, 0),
]


def keras_conv_transpose_case(h, w, c, o, k, stride, padding, output_padding):
    layer = keras.layers.Conv2DTranspose(o, k, strides=stride, padding=padding, output_padding=output_padding)
    xin = uniform(1, h, w, c)
    layer.build(xin.shape)
    kernel = keras.ops.convert_to_numpy(layer.weights[0])  # Keras' own initial kernel [kh, kw, out, in]
    bias = uniform(o)
    layer.weights[1].assign(bias)
    y = keras.ops.convert_to_numpy(layer(xin))
    return {"x": t(xin), "kernel": t(kernel), "bias": t(bias), "stride": stride, "padding": padding,
            "output_padding": output_padding, "kernel_size": k, "y": t(y)}


out["keras_conv_transpose"] = [
    keras_conv_transpose_case(3, 4, 2, 3, 3, 2, "same", None),
    keras_conv_transpose_case(3, 4, 2, 3, 3, 2, "valid", None),
    keras_conv_transpose_case(3, 3, 2, 2, 4, 2, "same", None),
    keras_conv_transpose_case(3, 3, 2, 2, 3, 2, "same", 1),
    keras_conv_transpose_case(2, 3, 2, 2, 2, 3, "valid", None),
]

# Depthwise convolution with depth multiplier 2 = a grouped convolution with groups = C.
xd = uniform(2, 6, 5, 3)
wd = uniform(3 * 2, 1, 3, 3)  # torch [C*M, 1, kh, kw]: output channel c*M + m
bd = uniform(6)
yd = F.conv2d(nchw(xd), torch.tensor(wd), torch.tensor(bd), stride=2, padding=1, groups=3)
# Ocelli / Keras depthwise kernel [kh, kw, C, M]
out["depthwise"] = {"x": t(xd), "kernel": t(wd.reshape(3, 2, 3, 3).transpose(2, 3, 0, 1)), "bias": t(bd), "y": t(nhwc(yd))}

sep = keras.layers.SeparableConv2D(4, 3, padding="same", depth_multiplier=2, use_bias=True)
xs = uniform(1, 5, 6, 3)
sep(xs)
for v in sep.weights:
    v.assign(uniform(*v.shape))
out["separable"] = {"x": t(xs), "depthwise_kernel": t(keras.ops.convert_to_numpy(sep.weights[0])),
                    "pointwise_kernel": t(keras.ops.convert_to_numpy(sep.weights[1])),
                    "bias": t(keras.ops.convert_to_numpy(sep.weights[2])), "y": t(keras.ops.convert_to_numpy(sep(xs)))}

xc = uniform(1, 2, 2, 6)
out["channel_shuffle"] = {"x": t(xc), "groups": 3, "y": t(nhwc(torch.nn.ChannelShuffle(3)(nchw(xc))))}

# --- Pooling -----------------------------------------------------------------------------
xl = uniform(2, 7, 6, 3, lo=0.1, hi=2)
out["lp_pool"] = [
    {"x": t(xl), "p": 2, "k": 2, "s": 2, "y": t(nhwc(torch.nn.LPPool2d(2, 2, 2)(nchw(xl))))},
    {"x": t(xl), "p": 3, "k": 3, "s": 2, "y": t(nhwc(torch.nn.LPPool2d(3, 3, 2)(nchw(xl))))},
    {"x": t(xl), "p": 1, "k": 2, "s": 1, "y": t(nhwc(torch.nn.LPPool2d(1, 2, 1)(nchw(xl))))},
]
xa = uniform(2, 7, 5, 3)
out["adaptive_max_pool"] = {"x": t(xa), "bins": {str(b): t(nhwc(F.adaptive_max_pool2d(nchw(xa), b))) for b in (1, 2, 3, 4)}}

# --- Normalization -----------------------------------------------------------------------
xn = uniform(2, 3, 4, 6) * 3 + 1
gamma, beta = uniform(6), uniform(6)
gn = torch.nn.GroupNorm(2, 6, eps=1e-5)
inn = torch.nn.InstanceNorm2d(6, eps=1e-5, affine=True)
ln = torch.nn.LayerNorm(6, eps=1e-5)
with torch.no_grad():
    for m in (gn, inn, ln):
        m.weight.copy_(torch.tensor(gamma)); m.bias.copy_(torch.tensor(beta))
out["normalization"] = {"x": t(xn), "gamma": t(gamma), "beta": t(beta), "epsilon": 1e-5,
                        "group_norm_2": t(nhwc(gn(nchw(xn)))), "instance_norm": t(nhwc(inn(nchw(xn)))),
                        "layer_norm": t(ln(torch.tensor(xn)).detach().numpy())}

# weight_norm on a Conv2d and a Linear: w = g * v / ||v||, norm per output unit (dim 0).
conv = torch.nn.utils.weight_norm(torch.nn.Conv2d(3, 4, 3, padding=1), dim=0)
with torch.no_grad():
    conv.weight_g.copy_(torch.tensor(uniform(4, 1, 1, 1, lo=0.5, hi=2)))
    conv.weight_v.copy_(torch.tensor(uniform(4, 3, 3, 3)))
xw = uniform(1, 5, 4, 3)
lin = torch.nn.utils.weight_norm(torch.nn.Linear(5, 3), dim=0)
with torch.no_grad():
    lin.weight_g.copy_(torch.tensor(uniform(3, 1, lo=0.5, hi=2)))
xlin = uniform(4, 5)
out["weight_norm"] = {
    "conv": {"x": t(xw), "g": t(conv.weight_g.detach().numpy().reshape(-1)),
             "v": t(conv.weight_v.detach().numpy().transpose(2, 3, 1, 0)), "bias": t(conv.bias.detach().numpy()),
             "y": t(nhwc(conv(nchw(xw))))},
    "dense": {"x": t(xlin), "g": t(lin.weight_g.detach().numpy().reshape(-1)),
              "v": t(lin.weight_v.detach().numpy().T), "bias": t(lin.bias.detach().numpy()),
              "y": t(lin(torch.tensor(xlin)).detach().numpy())},
}

# --- Losses ------------------------------------------------------------------------------
# torchvision's package import fails against this torch build (its C++ ops do not load), so
# run the source of torchvision/ops/focal_loss.py itself, with its logging import stubbed.
import importlib.util  # noqa: E402

_spec = importlib.util.find_spec("torchvision")
_focal_src = open(os.path.join(os.path.dirname(_spec.origin), "ops", "focal_loss.py")).read()
_focal_src = _focal_src.replace("from ..utils import _log_api_usage_once", "_log_api_usage_once = lambda *a: None")
_focal_ns = {}
exec(compile(_focal_src, "torchvision/ops/focal_loss.py", "exec"), _focal_ns)
sigmoid_focal_loss = _focal_ns["sigmoid_focal_loss"]

logits = uniform(4, 5, lo=-3, hi=3)
onehot = np.eye(5, dtype=np.float32)[[0, 3, 1, 4]]
probs = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
binary_logits = uniform(4, 3, lo=-3, hi=3)
binary_targets = (uniform(4, 3) > 0).astype(np.float32)
kl = keras.losses


def keras_per_sample(loss, y_true, y_pred):
    return keras.ops.convert_to_numpy(loss.call(y_true, y_pred))


out["focal"] = {
    "logits": t(logits), "onehot": t(onehot), "probs": t(probs),
    "categorical": t(keras_per_sample(kl.CategoricalFocalCrossentropy(), onehot, probs)),
    "categorical_logits_ls": t(keras_per_sample(
        kl.CategoricalFocalCrossentropy(alpha=0.5, gamma=1.5, from_logits=True, label_smoothing=0.1), onehot, logits)),
    "binary_logits": t(binary_logits), "binary_targets": t(binary_targets),
    "binary": t(keras_per_sample(kl.BinaryFocalCrossentropy(gamma=2, from_logits=True), binary_targets, binary_logits)),
    "binary_balanced_ls": t(keras_per_sample(
        kl.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.3, gamma=1.0, from_logits=True, label_smoothing=0.2),
        binary_targets, binary_logits)),
    "torchvision_sigmoid_focal": t(sigmoid_focal_loss(
        torch.tensor(binary_logits), torch.tensor(binary_targets), alpha=0.25, gamma=2, reduction="none")),
    "sparse_ls_logits": t(keras_per_sample(kl.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2), onehot, logits)),
}

a, p_, n_ = uniform(5, 4), uniform(5, 4), uniform(5, 4)
out["triplet_margin"] = {"anchor": t(a), "positive": t(p_), "negative": t(n_), "margin": 0.7,
                         "loss": float(torch.nn.TripletMarginLoss(margin=0.7)(torch.tensor(a), torch.tensor(p_), torch.tensor(n_)))}


def batch_triplet_reference(emb, labels, margin, mining, squared):
    """Online triplet mining after Moindrot's TensorFlow reference, in float64 (anchors without
    a positive or a negative are left out of the batch-hard mean)."""
    e = emb.astype(np.float64)
    d2 = ((e[:, None, :] - e[None, :, :]) ** 2).sum(-1)
    d = d2 if squared else np.sqrt(d2)
    n = len(labels)
    same = labels[:, None] == labels[None, :]
    pos = same & ~np.eye(n, dtype=bool)
    neg = ~same
    if mining == "all":
        loss = d[:, :, None] - d[:, None, :] + margin
        valid = pos[:, :, None] & neg[:, None, :]
        loss = np.maximum(loss * valid, 0)
        active = (loss > 1e-16).sum()
        return loss.sum() / max(active, 1)
    hp = (d * pos).max(1)
    hn = np.where(neg, d, np.inf).min(1)
    ok = pos.any(1) & neg.any(1)
    return np.maximum(hp - hn + margin, 0)[ok].mean()


emb = uniform(8, 3)
labels = np.array([0, 1, 0, 2, 1, 0, 2, 3])
out["batch_triplet"] = {"embeddings": t(emb), "labels": labels.tolist(), "margin": 0.5, "cases": [
    {"mining": m, "squared": sq, "loss": float(batch_triplet_reference(emb, labels, 0.5, m, sq))}
    for m in ("all", "hard") for sq in (False, True)]}

x1, x2 = uniform(6, 3), uniform(6, 3)
similar = np.array([1, 0, 1, 0, 0, 1], dtype=np.float32)
dd = np.sqrt(((x1.astype(np.float64) - x2) ** 2).sum(1))
out["contrastive"] = {"x1": t(x1), "x2": t(x2), "similar": t(similar), "margin": 1.2,
                      "loss": float(np.mean(0.5 * similar * dd ** 2 + 0.5 * (1 - similar) * np.maximum(1.2 - dd, 0) ** 2))}

# --- Parameter counts of the reference architectures --------------------------------------
class WideBasic(torch.nn.Module):
    """Zagoruyko & Komodakis' pre-activation block (their PyTorch code, as ported by xternalz)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1, self.conv1 = torch.nn.BatchNorm2d(cin), torch.nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = torch.nn.BatchNorm2d(cout), torch.nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = None if cin == cout and stride == 1 else torch.nn.Conv2d(cin, cout, 1, stride, 0, bias=False)


def wrn_parameters(depth, k, classes=10):
    n = (depth - 4) // 6
    widths = [16, 16 * k, 32 * k, 64 * k]
    modules = [torch.nn.Conv2d(3, 16, 3, 1, 1, bias=False)]
    for g in range(3):
        for b in range(n):
            modules.append(WideBasic(widths[g] if b == 0 else widths[g + 1], widths[g + 1], (1 if g == 0 else 2) if b == 0 else 1))
    modules += [torch.nn.BatchNorm2d(64 * k), torch.nn.Linear(64 * k, classes)]
    return sum(p.numel() for p in torch.nn.ModuleList(modules).parameters())


apps = keras.applications
out["parameter_counts"] = {
    "keras_resnet50": apps.ResNet50(weights=None).count_params(),
    "keras_mobilenet_1.0": apps.MobileNet(weights=None, alpha=1.0).count_params(),
    "keras_mobilenet_0.5": apps.MobileNet(weights=None, alpha=0.5).count_params(),
    "keras_densenet121": apps.DenseNet121(weights=None).count_params(),
    "torch_wrn_28_10": wrn_parameters(28, 10),
    "torch_wrn_16_8": wrn_parameters(16, 8),
}
print(out["parameter_counts"])

path = os.path.join(os.path.dirname(__file__), "..", "Tests", "OcelliNNTests", "Fixtures", "concepts.json")
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, "w") as f:
    json.dump(out, f, separators=(",", ":"))
print("wrote", os.path.normpath(path), os.path.getsize(path), "bytes")
