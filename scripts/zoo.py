#!/usr/bin/python3
"""The CNNs people deploy, exported the way they export them, run by q8 and by ONNX Runtime.

  scripts/zoo.py export DIR [--models a,b] [--opsets 13,17]
      torch.onnx.export of torchvision 0.14 classifiers (random weights, seeded) and of two nets
      written here (a YOLO-style detector and a UNet), with a dynamic batch axis, into
      DIR/NAME.opsetK.onnx, with DIR/NAME.input.npy (2 standard-normal images) and
      DIR/NAME.calib.npy (32 samples for quantization).
  scripts/zoo.py check DIR --q8 build/q8 [--models a,b] [--opsets 13,17]
      runs every exported model with `q8 run` and with ONNX Runtime (scripts/run_ort.js,
      NODE_PATH must hold onnxruntime-node) on the same input and fails unless q8's fp32 output
      matches within relative L2 1e-4.
  scripts/zoo.py int8 DIR --q8 build/q8 [--models a,b] [--torch]
      `q8 quantize` of each (32 calibration samples): output SQNR against fp32, ONNX Runtime on
      the same int8 file, the nodes left in fp32 and, with --torch, PyTorch's own int8 (FX graph
      mode, onednn) of the same model; fails when ONNX Runtime cannot run q8's file or q8's
      SQNR is below --min-sqnr (25 dB).

Models are made at test time from Debian's python3-torchvision, never committed. Run with
Debian's python (torch 1.13, onnx 1.12).
"""
import argparse
import collections
import io
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RUN_ORT = os.path.join(HERE, "run_ort.js")

# The models the check runs, and held-out ones of the same families (checked the same way, not
# looked at while developing).
MODELS = ["squeezenet1_1", "googlenet", "densenet121", "shufflenet_v2_x1_0", "mobilenet_v3_small",
          "mobilenet_v3_large", "efficientnet_b0", "mnasnet1_0", "regnet_y_400mf", "convnext_tiny", "yolo_style",
          "unet"]
HELD_OUT = ["squeezenet1_0", "shufflenet_v2_x0_5", "efficientnet_b1", "regnet_x_400mf", "mnasnet0_5"]
TOLERANCE = 1e-4


def build(name):
    import torch
    import torch.nn as nn
    import torchvision

    class ConvBnSiLU(nn.Sequential):
        def __init__(self, cin, cout, k=3, s=1):
            super().__init__(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.SiLU())

    class YoloStyle(nn.Module):
        """A small YOLOv5/v8-shaped detector: SiLU convs, a CSP-style split and Concat, an FPN neck
        with nearest upsampling and Concat, and a Sigmoid head on two scales."""

        def __init__(self, classes=4, anchors=3):
            super().__init__()
            self.stem = nn.Sequential(ConvBnSiLU(3, 16, 3, 2), ConvBnSiLU(16, 32, 3, 2))
            self.c3a, self.c3b, self.c3m = ConvBnSiLU(32, 16, 1), ConvBnSiLU(32, 16, 1), ConvBnSiLU(16, 16)
            self.c3out = ConvBnSiLU(32, 32, 1)
            self.down = ConvBnSiLU(32, 64, 3, 2)
            self.lateral = ConvBnSiLU(64, 32, 1)
            self.up = nn.Upsample(scale_factor=2, mode="nearest")
            self.fuse = ConvBnSiLU(64, 32, 3)
            out = anchors * (5 + classes)
            self.head_p3, self.head_p4 = nn.Conv2d(32, out, 1), nn.Conv2d(64, out, 1)

        def forward(self, x):
            x = self.stem(x)
            x = self.c3out(torch.cat([self.c3m(self.c3a(x)), self.c3b(x)], 1))
            p4 = self.down(x)
            p3 = self.fuse(torch.cat([self.up(self.lateral(p4)), x], 1))
            h3 = torch.sigmoid(self.head_p3(p3)).flatten(2)
            h4 = torch.sigmoid(self.head_p4(p4)).flatten(2)
            return torch.cat([h3, h4], 2)

    class UNet(nn.Module):
        """A two-level UNet: ReLU conv blocks, max-pool down, ConvTranspose up, skip Concat."""

        def __init__(self, c=16, classes=3):
            super().__init__()

            def block(i, o):
                return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(inplace=True),
                                     nn.Conv2d(o, o, 3, padding=1), nn.ReLU(inplace=True))

            self.e1, self.e2, self.mid = block(3, c), block(c, 2 * c), block(2 * c, 4 * c)
            self.pool = nn.MaxPool2d(2)
            self.u2, self.d2 = nn.ConvTranspose2d(4 * c, 2 * c, 2, stride=2), block(4 * c, 2 * c)
            self.u1, self.d1 = nn.ConvTranspose2d(2 * c, c, 2, stride=2), block(2 * c, c)
            self.out = nn.Conv2d(c, classes, 1)

        def forward(self, x):
            e1 = self.e1(x)
            e2 = self.e2(self.pool(e1))
            m = self.mid(self.pool(e2))
            d2 = self.d2(torch.cat([self.u2(m), e2], 1))
            d1 = self.d1(torch.cat([self.u1(d2), e1], 1))
            return self.out(d1)

    if name == "yolo_style":
        return YoloStyle(), (3, 160, 160)
    if name == "unet":
        return UNet(), (3, 96, 96)
    kwargs = {"aux_logits": False, "init_weights": True} if name in ("googlenet", "inception_v3") else {}
    return getattr(torchvision.models, name)(weights=None, **kwargs), (3, 224, 224)


def randomize_bn(model, rng):
    """Random BatchNorm statistics, so folding them is exercised (fresh ones are the identity)."""
    import torch
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.from_numpy(rng.normal(0, 0.1, n).astype(np.float32)))
            m.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, n).astype(np.float32)))


def export(args):
    import torch
    torch.manual_seed(0)
    os.makedirs(args.dir, exist_ok=True)
    for name in args.models:
        model, chw = build(name)
        rng = np.random.default_rng(sum(map(ord, name)))
        randomize_bn(model, rng)
        model.eval()
        x = rng.standard_normal((2,) + chw).astype(np.float32)
        np.save(os.path.join(args.dir, name + ".input.npy"), x)
        np.save(os.path.join(args.dir, name + ".calib.npy"), rng.standard_normal((32,) + chw).astype(np.float32))
        for opset in args.opsets:
            path = os.path.join(args.dir, f"{name}.opset{opset}.onnx")
            with torch.no_grad():
                torch.onnx.export(model, torch.from_numpy(x[:1]), path, opset_version=opset, input_names=["input"],
                                  output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
            print(f"exported {path}", flush=True)


def rel_l2(a, b):
    return float(np.linalg.norm((a - b).ravel()) / max(np.linalg.norm(b.ravel()), 1e-30))


def check(args):
    env = dict(os.environ)
    failures = []
    print(f"{'model':<24} {'opset':>5} {'rel L2 vs ORT':>14} {'q8 s':>6} {'ORT s':>6}")
    for name in args.models:
        x = os.path.join(args.dir, name + ".input.npy")
        for opset in args.opsets:
            model = os.path.join(args.dir, f"{name}.opset{opset}.onnx")
            q8_out, ort_out = model + ".q8.npy", model + ".ort.npy"
            t0 = time.time()
            q = subprocess.run([args.q8, "run", model, "--input", x, "--output", q8_out], capture_output=True, text=True)
            t1 = time.time()
            o = subprocess.run(["node", RUN_ORT, model, x, ort_out], capture_output=True, text=True, env=env)
            t2 = time.time()
            if o.returncode != 0:
                failures.append(f"{name} opset {opset}: ONNX Runtime failed: {o.stderr.strip()}")
                continue
            if q.returncode != 0:
                failures.append(f"{name} opset {opset}: q8 failed: {q.stderr.strip()}")
                print(f"{name:<24} {opset:>5} {'fails':>14}")
                continue
            a, b = np.load(q8_out), np.load(ort_out)
            if a.shape != b.shape:
                failures.append(f"{name} opset {opset}: q8 gives shape {a.shape}, ONNX Runtime {b.shape}")
                continue
            e = rel_l2(a, b)
            print(f"{name:<24} {opset:>5} {e:>14.2e} {t1 - t0:>6.2f} {t2 - t1:>6.2f}", flush=True)
            if not e <= TOLERANCE:
                failures.append(f"{name} opset {opset}: relative L2 {e:.3g} > {TOLERANCE}")
    for f in failures:
        print("FAIL " + f, file=sys.stderr)
    return 1 if failures else 0


def sqnr_db(x, ref):
    err = float(np.sum((x.astype(np.float64) - ref) ** 2))
    return float("inf") if err == 0 else 10 * np.log10(float(np.sum(ref.astype(np.float64) ** 2)) / err)


def torch_int8(name, x, calib):
    """PyTorch's own int8 of the same random-weight model: FX graph mode, onednn engine, the same
    calibration samples. Debian's torch has no fbgemm; onednn is its x86 engine. Returns (fp32
    output, int8 output), the latter None where FX cannot trace the model."""
    import torch
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    torch.backends.quantized.engine = "onednn"
    torch.manual_seed(0)
    model, _ = build(name)
    randomize_bn(model, np.random.default_rng(sum(map(ord, name))))
    model.eval()
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
        try:
            prepared = prepare_fx(model, get_default_qconfig_mapping("onednn"), (torch.from_numpy(x[:1]),))
            for i in range(0, len(calib), 8):
                prepared(torch.from_numpy(calib[i:i + 8]))
            q = convert_fx(prepared)(torch.from_numpy(x)).numpy()
        except Exception as e:  # FX cannot trace every model; say so in the table
            print(f"  {name}: PyTorch FX int8 failed: {str(e).splitlines()[0][:120]}", file=sys.stderr)
            return ref, None
    return ref, q


def int8(args):
    """q8 quantize on each model (opset 13 file): q8's int8 SQNR against fp32, ONNX Runtime on
    q8's int8 file, the nodes left in fp32, and PyTorch's own int8 SQNR on the same model."""
    print(f"{'model':<22} {'q8 int8 SQNR':>12} {'ORT on q8 file':>14} {'PyTorch int8':>12}  nodes in int8; left in fp32")
    failures = []
    for name in args.models:
        base = os.path.join(args.dir, name)
        fp32, qfile = f"{base}.opset13.onnx", f"{base}.int8.onnx"
        x, calib = np.load(base + ".input.npy"), np.load(base + ".calib.npy")
        r = subprocess.run([args.q8, "quantize", fp32, "--calib", base + ".calib.npy", "--output", qfile],
                           capture_output=True, text=True)
        if r.returncode != 0:
            failures.append(f"{name}: q8 quantize failed: {r.stderr.strip()}")
            continue
        left = [l.strip()[len("fp32: "):] for l in r.stdout.splitlines() if l.strip().startswith("fp32: ")]
        subprocess.run([args.q8, "run", fp32, "--input", base + ".input.npy", "--output", base + ".f.npy"], check=True)
        subprocess.run([args.q8, "run", qfile, "--input", base + ".input.npy", "--output", base + ".q.npy"], check=True)
        o = subprocess.run(["node", RUN_ORT, qfile, base + ".input.npy", base + ".oq.npy"], capture_output=True,
                           text=True)
        ref = np.load(base + ".f.npy")
        q8_db = sqnr_db(np.load(base + ".q.npy"), ref)
        ort_db = sqnr_db(np.load(base + ".oq.npy"), ref) if o.returncode == 0 else float("nan")
        if o.returncode != 0:
            failures.append(f"{name}: ONNX Runtime cannot run q8's int8 file: {o.stderr.strip()}")
        if not q8_db >= args.min_sqnr:
            failures.append(f"{name}: q8's int8 output is {q8_db:.1f} dB from fp32, below {args.min_sqnr} dB")
        pt = "-"
        if args.torch:
            tref, tq = torch_int8(name, x, calib)
            pt = f"{sqnr_db(tq, tref):.1f} dB" if tq is not None else "n/a"
        # "n of m nodes run in int8" from q8 quantize, and the kinds of the nodes left in fp32.
        counts = next((l.split(": ", 1)[1].split(" (")[0] for l in r.stdout.splitlines() if "run in int8" in l), "?")
        kinds = collections.Counter(l.rsplit("(", 1)[1].rstrip(")") for l in left)
        rest = ", ".join(f"{k} x{c}" for k, c in sorted(kinds.items())) or "-"
        print(f"{name:<22} {q8_db:>9.1f} dB {ort_db:>11.1f} dB {pt:>12}  {counts}; fp32: {rest}", flush=True)
    for f in failures:
        print("FAIL " + f, file=sys.stderr)
    return 1 if failures else 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["export", "check", "int8"])
    p.add_argument("dir")
    p.add_argument("--models", help="comma-separated; default: the checked list and the held-out ones")
    p.add_argument("--opsets", default="13,17")
    p.add_argument("--q8", default="build/q8")
    p.add_argument("--torch", action="store_true", help="int8: also PyTorch's own int8 (FX, onednn)")
    p.add_argument("--min-sqnr", type=float, default=25.0,
                   help="int8: fail a model whose q8 int8 output is further than this from fp32 (dB)")
    args = p.parse_args()
    args.models = args.models.split(",") if args.models else MODELS + HELD_OUT
    args.opsets = [int(o) for o in args.opsets.split(",")]
    if args.command == "export":
        export(args)
        return 0
    return check(args) if args.command == "check" else int8(args)


if __name__ == "__main__":
    sys.exit(main())
