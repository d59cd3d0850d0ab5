#!/usr/bin/python3
"""Builds the small op models in tests/op_models/ (maintainer script; the outputs are committed).

Small nn.Modules exported from PyTorch the way users export them (torch.onnx.export in eval mode,
a dynamic batch axis), each exercising ops through patterns real networks use; random seeded
weights, so running this again gives the same tensors. For each model NAME it writes:
  NAME.onnx              the exported model
  NAME_input.npy         a fixed standard-normal batch of 2
  NAME_ort_b1.npy        ONNX Runtime's output for the first image alone (batch 1)
  NAME_ort_b2.npy        ONNX Runtime's output for the batch of 2
and, with --q8 (the q8 program), se_norm quantized by q8 (calibrated on its input) as
  se_norm.qdq.onnx, se_norm.qdq_ort_b1.npy, se_norm.qdq_ort_b2.npy
so the int8 Mul (ONNX Runtime fuses DequantizeLinear -> Mul -> QuantizeLinear into QLinearMul) is
compared with ONNX Runtime's.

Run with Debian's python (torch, onnx) and ONNX Runtime's node binding:
  NODE_PATH=/tmp/ort/node_modules /usr/bin/python3 scripts/make_op_models.py [--out tests/op_models] [--q8 build/q8]
"""
import argparse
import os
import subprocess
import tempfile

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
RUN_ORT = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "peers", "run_ort.js")


class SqueezeExcite(nn.Module):
    """MobileNetV3/EfficientNet/RegNet's squeeze-excitation: x * gate(mean over H, W)."""

    def __init__(self, c, r):
        super().__init__()
        self.fc1 = nn.Conv2d(c, r, 1)
        self.fc2 = nn.Conv2d(r, c, 1)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)  # ReduceMean over [2, 3]
        s = F.hardtanh(self.fc2(F.relu(self.fc1(s))), 0.0, 1.0)  # Clip
        return x * s  # Mul [N,C,H,W] by [N,C,1,1]


class SeNorm(nn.Module):
    """SE block, a hand-written normalisation over the last axis (ReduceMean, Sub, Pow 2, Div),
    LayerNorm, per-channel and scalar Mul/Sub/Div, Softmax and LogSoftmax."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.se = SqueezeExcite(16, 4)
        self.conv2 = nn.Conv2d(16, 8, 3, stride=2, padding=1)
        self.ln = nn.LayerNorm(8)
        self.gamma = nn.Parameter(torch.rand(8, 1, 1) + 0.5)
        self.fc = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = self.se(x)
        x = self.conv2(x)
        u = x.mean(-1, keepdim=True)
        d = x - u
        v = d.pow(2).mean(-1, keepdim=True)
        x = d / (v + 1.0)
        x = self.ln(x)
        x = (x * 0.5 - 0.25) * self.gamma
        x = x / (self.gamma + 1.0)
        y = self.fc(torch.flatten(x, 1))
        return torch.cat([F.log_softmax(y, 1), F.softmax(y, 1)], 1)


class SplitHeads(nn.Module):
    """YOLOv8's C2f block and detect head as torch.split writes them (ONNX Split): a Conv's output
    split in two, a bottleneck on the second half, the three concatenated, then a head whose output
    is split into box (16) and class (4) channels, each through its own activation."""

    def __init__(self):
        super().__init__()
        self.cv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.m = nn.Conv2d(8, 8, 3, padding=1)
        self.cv2 = nn.Conv2d(24, 20, 1)

    def forward(self, x):
        a, b = self.cv1(x).split((8, 8), 1)
        y = torch.cat([a, b, F.silu(self.m(b))], 1)
        box, cls = self.cv2(y).split((16, 4), 1)
        return torch.cat([box * 0.5, cls.sigmoid()], 1)


def run_ort(path, name, x, out_dir):
    with tempfile.TemporaryDirectory() as tmp:
        one, two = os.path.join(tmp, "one.npy"), os.path.join(tmp, "two.npy")
        np.save(one, x[:1])
        np.save(two, x)
        for batch, inp in (("b1", one), ("b2", two)):
            subprocess.run(["node", RUN_ORT, path, inp, os.path.join(out_dir, f"{name}_ort_{batch}.npy")], check=True)


def export(model, name, shape, opset, out_dir):
    torch.manual_seed(0)
    for p in model.parameters():
        p.data = torch.randn_like(p) * 0.3
    model.eval()
    path = os.path.join(out_dir, name + ".onnx")
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(1))
    torch.onnx.export(model, x[:1], path, opset_version=opset, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    onnx.checker.check_model(onnx.load(path))
    np.save(os.path.join(out_dir, name + "_input.npy"), x.numpy())
    run_ort(path, name, x.numpy(), out_dir)
    ops = sorted({n.op_type for n in onnx.load(path).graph.node})
    print(name, "opset", opset, "ops:", " ".join(ops))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "op_models"))
    ap.add_argument("--q8", help="the q8 program, to write se_norm.qdq.onnx")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    export(SeNorm(), "se_norm", (3, 16, 16), 17, a.out)
    export(SqueezeExcite(16, 4), "se_block13", (16, 7, 5), 13, a.out)
    export(SplitHeads(), "split_heads", (3, 12, 10), 13, a.out)  # Split's sizes as an input
    export(SplitHeads(), "split_heads11", (3, 12, 10), 11, a.out)  # as the "split" attribute
    if a.q8:
        src, qdq = os.path.join(a.out, "se_norm.onnx"), os.path.join(a.out, "se_norm.qdq.onnx")
        x = os.path.join(a.out, "se_norm_input.npy")
        subprocess.run([a.q8, "quantize", src, "--calib", x, "--output", qdq], check=True)
        run_ort(qdq, "se_norm.qdq", np.load(x), a.out)


if __name__ == "__main__":
    main()
