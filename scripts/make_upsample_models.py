#!/usr/bin/python3
"""Builds the UNet-style test models of tests/upsample/ (maintainer script; the outputs are committed).

A small UNet as torch.onnx.export writes it (torch 1.13): Conv, ConvTranspose (stride 2; grouped,
padded, with output_padding), Concat of skip connections, nearest and bilinear upsampling through
nn.Upsample and F.interpolate (half_pixel, align_corners, asymmetric nearest), MaxPool; a dynamic
batch axis. Exported at opsets 13 and 17. Random weights, fixed seeds.

For each opset O it writes:
  unet_opsetO.onnx           the exported model (about 45 KB)
  unet_opsetO_ort_bB.npy     ONNX Runtime's fp32 output on input_bB.npy, B = 1, 2
and once:
  input_b1.npy, input_b2.npy  standard-normal inputs [B, 3, 16, 20]

ONNX Runtime runs through node and onnxruntime-node (/work/shared/peers/run_ort.js; NODE_PATH must
find onnxruntime-node). Run with Debian's python (torch 1.13, onnx 1.12):
  NODE_PATH=/tmp/ort/node_modules /usr/bin/python3 scripts/make_upsample_models.py [--out tests/upsample]
"""
import argparse
import io
import os
import subprocess

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)


class UNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.e1 = nn.Conv2d(3, 8, 3, padding=1)
        self.e2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.e3 = nn.Conv2d(16, 16, 3, stride=2, padding=1)
        self.up3 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)  # half_pixel linear
        self.d2 = nn.Conv2d(32, 16, 3, padding=1)
        self.up2 = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.d1 = nn.Conv2d(16, 8, 3, padding=1)
        self.up1 = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1, groups=2)
        self.head = nn.Conv2d(4 + 3, 2, 1)

    def forward(self, x):
        a = F.relu(self.e1(x))
        b = F.relu(self.e2(a))
        c = F.relu(self.e3(b))
        d2 = F.relu(self.d2(torch.cat([self.up3(c), b], 1)))
        d1 = F.relu(self.d1(torch.cat([self.up2(d2), a], 1)))
        near = F.max_pool2d(F.interpolate(d1, scale_factor=2, mode="nearest"), 2)  # asymmetric, floor
        y = self.up1(near)
        y = F.interpolate(y, scale_factor=0.5, mode="bilinear", align_corners=True)
        return self.head(torch.cat([y, x], 1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "upsample"))
    ap.add_argument("--run-ort", default="/work/shared/peers/run_ort.js")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    model = UNet().eval()
    rng = np.random.default_rng(1)
    inputs = {b: rng.standard_normal((b, 3, 16, 20)).astype(np.float32) for b in (1, 2)}
    for b, x in inputs.items():
        np.save(os.path.join(args.out, "input_b%d.npy" % b), x)
    for opset in (13, 17):
        buf = io.BytesIO()
        torch.onnx.export(model, torch.from_numpy(inputs[1]), buf, opset_version=opset, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
        path = os.path.join(args.out, "unet_opset%d.onnx" % opset)
        with open(path, "wb") as f:
            f.write(buf.getvalue())
        for b in (1, 2):
            out = os.path.join(args.out, "unet_opset%d_ort_b%d.npy" % (opset, b))
            subprocess.run(["node", args.run_ort, path, os.path.join(args.out, "input_b%d.npy" % b), out], check=True)
            with torch.no_grad():
                want = model(torch.from_numpy(inputs[b])).numpy()
            got = np.load(out)
            print("%s batch %d: max |ORT - PyTorch| = %.3g" % (os.path.basename(path), b, np.abs(got - want).max()))


if __name__ == "__main__":
    main()
