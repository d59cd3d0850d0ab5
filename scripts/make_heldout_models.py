#!/usr/bin/python3
"""Builds the held-out test models in tests/heldout/ (maintainer script; the outputs are committed).

Small CNNs that q8 was not developed against, covering the op set the engine supports, exported
from PyTorch the way users export them (torch.onnx.export of an nn.Module in eval mode). Random
weights and random BatchNorm statistics; everything is seeded, so running this again gives the
same tensors.

For each model NAME it writes:
  NAME.onnx          the exported model
  NAME_input.npy     a fixed standard-normal batch (2 items; 1 where the batch is fixed)
  NAME_output.npy    PyTorch's fp32 output for that batch (the first, and only, output)
  NAME_calib.npy     16 standard-normal samples for quantization

Run with Debian's python (torch 1.13, onnx 1.12):
  /usr/bin/python3 scripts/make_heldout_models.py [--out tests/heldout] [--ort-check]

--ort-check additionally runs each model under ONNX Runtime (node + onnxruntime-node, see
tests/heldout/README.md) and prints the max abs difference to PyTorch; it is not a test dependency.
"""
import argparse
import collections
import io
import os
import subprocess
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

EVAL = torch.onnx.TrainingMode.EVAL
PRESERVE = torch.onnx.TrainingMode.PRESERVE


def randomize_bn(module, seed):
    """Give every BatchNorm non-trivial statistics and affine parameters, like a trained net."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d) and not getattr(m, "keep_default_init", False):
            c = m.num_features
            with torch.no_grad():
                m.weight.copy_(0.5 + torch.rand(c, generator=g))
                m.bias.copy_(0.2 * torch.randn(c, generator=g))
                m.running_mean.copy_(0.2 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))


def conv_bn(cin, cout, k, s=1, p=0, g=1, d=1, act=None):
    layers = [nn.Conv2d(cin, cout, k, s, p, dilation=d, groups=g, bias=False), nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act)
    return nn.Sequential(*layers)


# ---- the models ------------------------------------------------------------------------------

class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = conv_bn(cin, cout, 3, stride, 1, act=nn.ReLU(inplace=True))
        self.c2 = conv_bn(cout, cout, 3, 1, 1)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = conv_bn(cin, cout, 1, stride, 0)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        idt = x if self.down is None else self.down(x)
        return self.relu(self.c2(self.c1(x)) + idt)


class ResNetish(nn.Module):
    """ResNet-style: stem, basic blocks with residual Add, a strided 1x1 projection shortcut,
    AdaptiveAvgPool2d((1,1)) -> GlobalAveragePool, torch.flatten -> Flatten, Linear -> Gemm.
    Exported the default way (BatchNorm folded into the convolutions by the exporter)."""

    def __init__(self, classes=10):
        super().__init__()
        self.stem = conv_bn(3, 16, 3, 1, 1, act=nn.ReLU(inplace=True))
        self.layer1 = BasicBlock(16, 16, 1)
        self.layer2 = BasicBlock(16, 32, 2)
        self.layer3 = BasicBlock(32, 48, 2)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(48, classes)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand, dw_mult=1):
        super().__init__()
        hid = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.expand = conv_bn(cin, hid, 1, act=nn.ReLU6(inplace=True))
        # depthwise: groups == in channels; dw_mult > 1 gives a channel multiplier
        self.dw = conv_bn(hid, hid * dw_mult, 3, stride, 1, g=hid, act=nn.ReLU6(inplace=True))
        self.project = conv_bn(hid * dw_mult, cout, 1)

    def forward(self, x):
        y = self.project(self.dw(self.expand(x)))
        return x + y if self.use_res else y


class MobileNetish(nn.Module):
    """MobileNetV2-style: ReLU6 (Clip 0..6), depthwise 3x3 (stride 1 and 2), a depthwise conv
    with channel multiplier 2, inverted residual Add, BatchNorm left unfused, Dropout (dropped by
    the exporter), GlobalAveragePool, Flatten, Gemm."""

    def __init__(self, classes=10):
        super().__init__()
        self.stem = conv_bn(3, 16, 3, 2, 1, act=nn.ReLU6(inplace=True))
        self.dwm = conv_bn(16, 32, 3, 1, 1, g=16, act=nn.ReLU6(inplace=True))  # multiplier 2
        self.pw = conv_bn(32, 16, 1)
        self.b1 = InvertedResidual(16, 24, 2, 4)
        self.b2 = InvertedResidual(24, 24, 1, 4)
        self.b3 = InvertedResidual(24, 32, 2, 2, dw_mult=2)
        self.b4 = InvertedResidual(32, 32, 1, 3)
        self.head = conv_bn(32, 96, 1, act=nn.ReLU6(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(96, classes)

    def forward(self, x):
        x = self.pw(self.dwm(self.stem(x)))
        x = self.head(self.b4(self.b3(self.b2(self.b1(x)))))
        return self.fc(self.drop(torch.flatten(self.pool(x), 1)))


class VGGishCeil(nn.Module):
    """VGG-style on 3x45x45 (odd sizes so ceil_mode matters): MaxPool k3 s2 p1 ceil_mode, MaxPool
    k2 s2 ceil_mode, padded AveragePools with count_include_pad=False (one with ceil_mode),
    x.view(-1, K) -> Reshape, a Linear-ReLU-Dropout-Linear classifier. Opset 11.
    (count_include_pad=True exports as Pad + AveragePool: that is the model 'avgpool_default'.)"""

    def __init__(self, classes=7):
        super().__init__()
        self.f = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, padding=1, ceil_mode=True),                 # 45 -> 23
            nn.Conv2d(16, 24, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2, ceil_mode=True),                            # 23 -> 12
            nn.Conv2d(24, 32, 3, padding=1), nn.ReLU(inplace=True),
            nn.AvgPool2d(3, 1, padding=1, count_include_pad=False),        # 12 -> 12
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(inplace=True),
            nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False),  # 12 -> 7
        )
        self.k = 32 * 7 * 7
        self.classifier = nn.Sequential(
            nn.Linear(self.k, 64), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(64, classes))

    def forward(self, x):
        x = self.f(x)
        return self.classifier(x.view(-1, self.k))


class Grouped(nn.Module):
    """Grouped (not depthwise) convolutions: groups=4 and groups=2, a rectangular 3x5 kernel with
    stride (2,1) and padding (1,2), stride (2,4) with padding (1,0), a 1x1 conv with groups=8; Hardtanh(-0.5, 1.5) -> Clip with
    other bounds; BatchNorm unfused; AdaptiveAvgPool2d((2,2)) on 8x8 -> AveragePool k4 s4;
    Flatten + Gemm. Opset 17."""

    def __init__(self, classes=10):
        super().__init__()
        self.stem = conv_bn(3, 16, 3, 1, 1, act=nn.ReLU(inplace=True))                 # 32x32
        self.g4 = conv_bn(16, 32, 3, 1, 1, g=4, act=nn.Hardtanh(-0.5, 1.5))           # 32x32
        self.g2 = conv_bn(32, 32, (3, 5), (2, 1), (1, 2), g=2, act=nn.ReLU(inplace=True))  # 16x32
        self.s2 = conv_bn(32, 48, 3, (2, 4), (1, 0), g=2, act=nn.ReLU(inplace=True))  # 8x8
        self.g8 = nn.Conv2d(48, 48, 1, groups=8)                                       # 8x8
        self.pool = nn.AdaptiveAvgPool2d((2, 2))
        self.fc = nn.Linear(48 * 4, classes)

    def forward(self, x):
        x = self.g8(self.s2(self.g2(self.g4(self.stem(x)))))
        return self.fc(torch.flatten(self.pool(x), 1))


class Dilated(nn.Module):
    """Dilated convolutions (dilation 2, and (2,3) with matching padding), BatchNorm, Hardtanh
    (-1, 2), AdaptiveAvgPool2d((2,2)) on an 8x8 map -> AveragePool, x.view(x.size(0), -1) with a
    fixed batch of 1 (the exporter folds the shape to a constant) -> Reshape, Linear.
    Fixed batch 1, default export (constant folding, BatchNorm fused)."""

    def __init__(self, classes=5):
        super().__init__()
        self.c1 = conv_bn(3, 16, 3, 2, 1, act=nn.ReLU(inplace=True))                     # 16x16
        self.c2 = conv_bn(16, 24, 3, 1, 2, d=2, act=nn.ReLU(inplace=True))               # 16x16
        self.c3 = conv_bn(24, 24, 3, 1, (2, 3), d=(2, 3), act=nn.Hardtanh(-1.0, 2.0))    # 16x16
        self.c4 = conv_bn(24, 32, 3, 2, 2, d=2, act=nn.ReLU(inplace=True))               # 8x8
        self.pool = nn.AdaptiveAvgPool2d((2, 2))
        self.fc = nn.Linear(32 * 4, classes)

    def forward(self, x):
        x = self.pool(self.c4(self.c3(self.c2(self.c1(x)))))
        return self.fc(x.view(x.size(0), -1))


class BNUnfused(nn.Module):
    """BatchNormalization nodes kept in the graph: after convolutions (with and without conv bias)
    and standalone after a residual Add; one BatchNorm keeps PyTorch's default init, so the
    exporter dedups its identical initializers through Identity nodes. MaxPool k3 s2 p1,
    GlobalAveragePool, Flatten, Gemm."""

    def __init__(self, classes=10):
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.pool = nn.MaxPool2d(3, 2, padding=1)
        self.c2 = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.c3 = nn.Conv2d(16, 16, 1)
        self.bn3 = nn.BatchNorm2d(16)
        self.bn_add = nn.BatchNorm2d(16)          # standalone, after the Add
        self.c4 = nn.Conv2d(16, 32, 3, 2, 1)
        self.bn4 = nn.BatchNorm2d(32)
        self.bn4.keep_default_init = True         # weight == running_var, bias == running_mean
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, classes)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.c1(x))))
        y = F.relu(self.bn2(self.c2(x)))
        y = self.bn3(self.c3(y))
        x = F.relu(self.bn_add(x + y))
        x = F.relu6(self.bn4(self.c4(x)))
        return self.fc(torch.flatten(self.gap(x), 1))


class MLPHeadMatMul(nn.Module):
    """A small conv trunk and an MLP head written with tensors: x @ W (MatMul with a constant
    matrix) + b (Add of a constant vector), ReLU, nn.Identity, a bias-free Linear, and a final
    x @ W producing the graph output (a MatMul that stays fp32 by design)."""

    def __init__(self, classes=6):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(3, 12, 3, 2, 1), nn.ReLU(inplace=True),                  # 16x16
            nn.Conv2d(12, 24, 3, 2, 1), nn.ReLU(inplace=True),                 # 8x8
            nn.Conv2d(24, 16, 1), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d((4, 4)),                                       # 4x4: AveragePool k2 s2
        )
        g = torch.Generator().manual_seed(1234)
        self.w1 = nn.Parameter(torch.randn(16 * 16, 64, generator=g) / 16.0)
        self.b1 = nn.Parameter(0.1 * torch.randn(64, generator=g))
        self.ident = nn.Identity()
        self.fc_nobias = nn.Linear(64, 32, bias=False)
        self.w2 = nn.Parameter(torch.randn(32, classes, generator=g) / 32 ** 0.5)

    def forward(self, x):
        x = torch.flatten(self.trunk(x), 1)
        x = F.relu(x @ self.w1 + self.b1)
        x = F.relu(self.fc_nobias(self.ident(x)))
        return x @ self.w2


class AvgPoolDefault(nn.Module):
    """nn.AvgPool2d with its default count_include_pad=True, as most user code writes it. PyTorch
    1.13 exports every such pool (at every opset) as Pad (constant zeros, here also all-zero pads)
    followed by an AveragePool with pads 0: AvgPool2d(2), AvgPool2d(3, 1, 1) and
    AvgPool2d(3, 2, 1, ceil_mode=True). ReLU, Flatten, Gemm."""

    def __init__(self, classes=10):
        super().__init__()
        self.f = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(inplace=True),
            nn.AvgPool2d(2),                                                    # 32 -> 16
            nn.Conv2d(16, 24, 3, padding=1), nn.ReLU(inplace=True),
            nn.AvgPool2d(3, 1, 1),                                              # 16 -> 16
            nn.Conv2d(24, 32, 3, 2, 1), nn.ReLU(inplace=True),                  # 8
            nn.Conv2d(32, 32, 1), nn.ReLU(inplace=True),
            nn.AvgPool2d(3, 2, 1, ceil_mode=True),                              # 8 -> 5 (ceil_mode adds a window)
        )
        self.fc = nn.Linear(32 * 5 * 5, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.f(x), 1))


class Activations(nn.Module):
    """The element-wise activations of newer CNNs (MobileNetV3, EfficientNet, ...), each after a
    convolution: Hardswish (opset 14+ exports HardSwish), LeakyReLU, ELU, Hardsigmoid, Tanh,
    Sigmoid, then sqrt, erf and exp of the sigmoid's output (always >= 0) before the pooling."""

    def __init__(self, classes=10):
        super().__init__()
        self.f = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.Hardswish(),
            nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.LeakyReLU(0.1),
            nn.Conv2d(16, 24, 3, 2, 1), nn.ELU(alpha=0.7),
            nn.Conv2d(24, 24, 1), nn.Hardsigmoid(),
            nn.Conv2d(24, 32, 3, padding=1), nn.Tanh(),
            nn.Conv2d(32, 32, 1), nn.Sigmoid(),
        )
        self.fc = nn.Linear(32, classes)

    def forward(self, x):
        x = torch.exp(torch.erf(torch.sqrt(self.f(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# name, class, input CHW, opset, dynamic batch, export mode, constant folding
MODELS = [
    ("resnetish", ResNetish, (3, 32, 32), 13, True, EVAL, True),
    ("mobilenetish", MobileNetish, (3, 48, 48), 13, True, PRESERVE, False),
    ("vggish_ceil", VGGishCeil, (3, 45, 45), 11, True, EVAL, True),
    ("grouped", Grouped, (3, 32, 32), 17, True, PRESERVE, True),
    ("dilated", Dilated, (3, 32, 32), 13, False, EVAL, True),
    ("bn_unfused", BNUnfused, (3, 32, 32), 13, True, PRESERVE, True),
    ("mlp_head_matmul", MLPHeadMatMul, (3, 32, 32), 13, True, EVAL, True),
    ("avgpool_default", AvgPoolDefault, (3, 32, 32), 13, True, EVAL, True),
    ("activations", Activations, (3, 32, 32), 17, True, EVAL, True),
]


def save_npy(path, a):
    np.save(path, np.ascontiguousarray(a, dtype=np.float32))


def build(out_dir, ort_check):
    os.makedirs(out_dir, exist_ok=True)
    report = []
    for idx, (name, cls, chw, opset, dynamic, mode, fold) in enumerate(MODELS):
        torch.manual_seed(1000 + idx)
        model = cls()
        randomize_bn(model, 2000 + idx)
        model.eval()

        rng = np.random.default_rng(3000 + idx)
        batch = 2 if dynamic else 1
        x = rng.standard_normal((batch,) + chw).astype(np.float32)
        calib = rng.standard_normal((16,) + chw).astype(np.float32)
        with torch.no_grad():
            y = model(torch.from_numpy(x)).numpy()

        buf = io.BytesIO()
        kwargs = dict(opset_version=opset, do_constant_folding=fold, training=mode,
                      input_names=["input"], output_names=["output"])
        if dynamic:
            kwargs["dynamic_axes"] = {"input": {0: "batch"}, "output": {0: "batch"}}
        with torch.no_grad():
            torch.onnx.export(model, torch.from_numpy(x), buf, **kwargs)
        proto = onnx.load_from_string(buf.getvalue())
        onnx.checker.check_model(proto)
        onnx_path = os.path.join(out_dir, name + ".onnx")
        with open(onnx_path, "wb") as f:
            f.write(buf.getvalue())
        save_npy(os.path.join(out_dir, name + "_input.npy"), x)
        save_npy(os.path.join(out_dir, name + "_output.npy"), y)
        save_npy(os.path.join(out_dir, name + "_calib.npy"), calib)

        ops = collections.Counter(n.op_type for n in proto.graph.node)
        ort = None
        if ort_check:
            ort = ort_diff(onnx_path, os.path.join(out_dir, name + "_input.npy"), y)
        report.append((name, opset, dynamic, mode, fold, x.shape, y.shape, os.path.getsize(onnx_path), ops, ort))
        print(f"{name}: opset {opset}, input {list(x.shape)}, output {list(y.shape)}, "
              f"{os.path.getsize(onnx_path)} bytes, ops {dict(sorted(ops.items()))}"
              + ("" if ort is None else f", ORT max|diff| {ort:.3g}"))
    return report


def ort_diff(onnx_path, in_path, y):
    """Max abs difference between ONNX Runtime's output and PyTorch's (None if ORT is absent)."""
    script = "/work/shared/peers/run_ort.js"
    out = onnx_path + ".ort_out.npy"
    env = dict(os.environ, NODE_PATH=os.environ.get("NODE_PATH", "/tmp/ort/node_modules"))
    try:
        subprocess.run(["node", script, onnx_path, in_path, out], check=True, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        o = np.load(out)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"  ORT check failed for {onnx_path}: {e}", file=sys.stderr)
        return None
    finally:
        if os.path.exists(out):
            os.remove(out)
    return float(np.max(np.abs(o.reshape(y.shape) - y)))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "heldout"))
    ap.add_argument("--ort-check", action="store_true")
    args = ap.parse_args()
    build(os.path.normpath(args.out), args.ort_check)


if __name__ == "__main__":
    main()
