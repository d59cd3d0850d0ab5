#!/usr/bin/python3
"""Train small MobileNetV3-, EfficientNet- and Inception/UNet-style nets on Fashion-MNIST and
measure q8's int8 accuracy on them against fp32 and PyTorch's own int8.

Maintainer script, not a build dependency (training takes minutes; CI only runs the committed
models, in tests/test_fashion_zoo.cpp). Needs Debian's /usr/bin/python3 with torch 1.13,
numpy and onnx, and a built q8 program (--q8, default build/q8). Reads Fashion-MNIST from
/usr/share/datasets/fashion-mnist through scripts/train_fashion.py (same reader, normalisation
and calibration images: models/fashion_calib_256.npy).

For each model it trains in fp32 (seeded, single-threaded), exports ONNX (opset 13, dynamic
batch axis), and measures top-1 on the 10,000 test images for:
  - PyTorch fp32;
  - PyTorch int8: FX graph mode (prepare_fx / convert_fx) with
    get_default_qconfig_mapping('onednn') on the 'onednn' engine, calibrated on the 256 images;
  - q8 fp32 and q8 int8 (`q8 quantize --calib models/fashion_calib_256.npy`, default method,
    then `q8 eval`), and what `q8 info` says runs in int8 and in fp32.
It writes into --out-dir (default tests/fashion_zoo/): MODEL.onnx per model, figures.tsv (the
numbers tests/test_fashion_zoo.cpp checks against) and README.md (provenance and the table).
"""
import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_fashion  # noqa: E402  (the IDX reader, normalisation and calibration set)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))


# ---- Building blocks ---------------------------------------------------------------------------

def conv_bn_act(cin, cout, k=3, stride=1, act=nn.ReLU, groups=1):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Global pool -> 1x1 conv -> act -> 1x1 conv -> gate -> channel-wise Mul.

    pool='gap' exports GlobalAveragePool (as torchvision's blocks do); pool='mean' exports
    ReduceMean over the spatial axes (as hand-written blocks often do)."""

    def __init__(self, c, squeeze, act, gate, pool="gap"):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1) if pool == "gap" else None
        self.fc1 = nn.Conv2d(c, squeeze, 1)
        self.act = act()
        self.fc2 = nn.Conv2d(squeeze, c, 1)
        self.gate = gate()

    def forward(self, x):
        s = self.pool(x) if self.pool is not None else x.mean((2, 3), keepdim=True)
        return x * self.gate(self.fc2(self.act(self.fc1(s))))


class InvertedResidual(nn.Module):
    """MobileNetV3 bneck / EfficientNet MBConv: [1x1 expand] -> depthwise kxk -> [SE] -> 1x1
    project, with the residual Add when shapes allow."""

    def __init__(self, cin, cexp, cout, k, stride, act, se=None):
        super().__init__()
        layers = []
        if cexp != cin:
            layers.append(conv_bn_act(cin, cexp, 1, 1, act))
        layers.append(conv_bn_act(cexp, cexp, k, stride, act, groups=cexp))
        if se is not None:
            layers.append(se(cexp))
        layers.append(conv_bn_act(cexp, cout, 1, 1, None))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y


class Inception(nn.Module):
    """Four parallel branches joined by Concat: 1x1; 1x1 -> 3x3; 1x1 -> 3x3 -> 3x3 (a factorised
    5x5); 3x3 max pool -> 1x1."""

    def __init__(self, cin, b1, b3r, b3, b5r, b5, bp):
        super().__init__()
        self.b1 = conv_bn_act(cin, b1, 1)
        self.b3 = nn.Sequential(conv_bn_act(cin, b3r, 1), conv_bn_act(b3r, b3, 3))
        self.b5 = nn.Sequential(conv_bn_act(cin, b5r, 1), conv_bn_act(b5r, b5, 3), conv_bn_act(b5, b5, 3))
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), conv_bn_act(cin, bp, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1)


def mnv3_se(pool="gap"):
    return lambda c: SqueezeExcite(c, max(8, c // 4), nn.ReLU, nn.Hardsigmoid, pool)


def effnet_se(cin_ratio=4, pool="gap"):
    # EfficientNet squeezes relative to the block's input width; c // (4 * expansion) ~ c // 16.
    return lambda c: SqueezeExcite(c, max(4, c // cin_ratio), nn.SiLU, nn.Sigmoid, pool)


# ---- The models --------------------------------------------------------------------------------

class MobileNetV3ish(nn.Module):
    """MobileNetV3-small-like: Hardswish, SE with Hardsigmoid gating, 3x3 and 5x5 depthwise."""

    def __init__(self):
        super().__init__()
        HS, R = nn.Hardswish, nn.ReLU
        self.features = nn.Sequential(
            conv_bn_act(1, 16, 3, 2, HS),                                  # 14x14
            InvertedResidual(16, 16, 16, 3, 1, R, mnv3_se()),
            InvertedResidual(16, 48, 24, 3, 2, R),                         # 7x7
            InvertedResidual(24, 72, 24, 3, 1, R),
            InvertedResidual(24, 96, 40, 5, 1, HS, mnv3_se()),
            InvertedResidual(40, 96, 40, 5, 1, HS, mnv3_se()),
            conv_bn_act(40, 128, 1, 1, HS))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(128, 64), nn.Hardswish(), nn.Linear(64, 10))

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)))


class EfficientNetish(nn.Module):
    """EfficientNet-B0-like: MBConv with SiLU, SE with SiLU and Sigmoid gating."""

    def __init__(self):
        super().__init__()
        S = nn.SiLU
        self.features = nn.Sequential(
            conv_bn_act(1, 16, 3, 2, S),                                   # 14x14
            InvertedResidual(16, 16, 16, 3, 1, S, effnet_se()),
            InvertedResidual(16, 64, 24, 3, 2, S, effnet_se(16)),          # 7x7
            InvertedResidual(24, 96, 24, 3, 1, S, effnet_se(16)),
            InvertedResidual(24, 96, 40, 5, 1, S, effnet_se(16)),
            conv_bn_act(40, 160, 1, 1, S))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(160, 10))

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)))


class InceptionUNet(nn.Module):
    """Inception branches on the down path, ConvTranspose and nearest Upsample on the up path,
    skip Concats, then a classifier head."""

    def __init__(self):
        super().__init__()
        self.stem0 = conv_bn_act(1, 8, 3)                                   # 28x28x8
        self.stem1 = conv_bn_act(8, 16, 3, 2)                               # 14x14x16
        self.inc1 = Inception(16, 8, 8, 8, 4, 4, 4)                         # 14x14x24
        self.down = nn.MaxPool2d(2)                                         # 7x7x24
        self.inc2 = Inception(24, 16, 12, 16, 8, 8, 8)                      # 7x7x48
        self.up1 = nn.Sequential(nn.ConvTranspose2d(48, 24, 2, 2, bias=False), nn.BatchNorm2d(24), nn.ReLU())
        self.dec1 = conv_bn_act(24 + 24, 16, 1)                             # 14x14x16
        self.up2 = nn.Upsample(scale_factor=2, mode="nearest")              # 28x28x16
        self.head = conv_bn_act(16 + 8, 32, 3, 2)                           # 14x14x32
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32, 10))

    def forward(self, x):
        s0 = self.stem0(x)
        s1 = self.inc1(self.stem1(s0))
        b = self.inc2(self.down(s1))
        d1 = self.dec1(torch.cat([self.up1(b), s1], 1))
        return self.classifier(self.pool(self.head(torch.cat([self.up2(d1), s0], 1))))


class MobileNetV3ishK7(nn.Module):
    """Held out: a MobileNetV3 with 7x7 depthwise kernels, other widths, SE and final pooling
    through ReduceMean, no hidden classifier layer."""

    def __init__(self):
        super().__init__()
        HS, R = nn.Hardswish, nn.ReLU
        self.features = nn.Sequential(
            conv_bn_act(1, 24, 3, 2, HS),                                  # 14x14
            InvertedResidual(24, 24, 24, 7, 1, R, mnv3_se("mean")),
            InvertedResidual(24, 72, 32, 7, 2, HS, mnv3_se("mean")),       # 7x7
            InvertedResidual(32, 96, 32, 3, 1, HS, mnv3_se("mean")),
            InvertedResidual(32, 96, 32, 7, 1, HS),
            conv_bn_act(32, 128, 1, 1, HS))
        self.classifier = nn.Linear(128, 10)

    def forward(self, x):
        return self.classifier(self.features(x).mean((2, 3)))


class EfficientUNet(nn.Module):
    """Held out: an EfficientNet/UNet hybrid. MBConv encoder (SiLU, Sigmoid-gated SE), a
    ConvTranspose then a nearest Upsample decoder with skip Concats, and a conv head."""

    def __init__(self):
        super().__init__()
        S = nn.SiLU
        self.stem = conv_bn_act(1, 8, 3, 1, S)                              # 28x28x8
        self.enc1 = InvertedResidual(8, 32, 16, 3, 2, S, effnet_se(8))      # 14x14x16
        self.enc2 = InvertedResidual(16, 64, 32, 5, 2, S, effnet_se(16))   # 7x7x32
        self.up1 = nn.Sequential(nn.ConvTranspose2d(32, 16, 2, 2, bias=False), nn.BatchNorm2d(16), S())
        self.dec1 = InvertedResidual(32, 64, 16, 3, 1, S, effnet_se(16))    # 14x14x16
        self.up2 = nn.Upsample(scale_factor=2, mode="nearest")              # 28x28x16
        self.head = conv_bn_act(16 + 8, 48, 3, 2, S)                        # 14x14x48
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(48, 10))

    def forward(self, x):
        s0 = self.stem(x)
        s1 = self.enc1(s0)
        d1 = self.dec1(torch.cat([self.up1(self.enc2(s1)), s1], 1))
        return self.classifier(self.pool(self.head(torch.cat([self.up2(d1), s0], 1))))


# name -> (constructor, held out?)
MODELS = {
    "mobilenetv3ish": (MobileNetV3ish, False),
    "efficientnetish": (EfficientNetish, False),
    "inception_unet": (InceptionUNet, False),
    "mobilenetv3ish_k7": (MobileNetV3ishK7, True),
    "efficient_unet": (EfficientUNet, True),
}


# ---- Training and measuring --------------------------------------------------------------------

def train(model, x_train, y_train, args, seed):
    torch.manual_seed(seed)
    return train_fashion.train(model, x_train, y_train, args.epochs, args.lr, args.batch, seed)


def torch_int8(model, calib):
    """PyTorch's own int8: FX graph mode, onednn qconfig and engine, calibrated on `calib`."""
    from torch.ao.quantization import QConfig, default_weight_observer, get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    torch.backends.quantized.engine = "onednn"
    mapping = get_default_qconfig_mapping("onednn")
    # PyTorch 1.13 refuses per-channel weights for ConvTranspose: per-tensor there, as its docs say.
    act = mapping.global_qconfig.activation
    mapping.set_object_type(nn.ConvTranspose2d, QConfig(activation=act, weight=default_weight_observer))
    example = (torch.from_numpy(calib[:1]),)
    prepared = prepare_fx(copy.deepcopy(model).eval(), mapping, example)
    with torch.no_grad():
        for i in range(0, len(calib), 32):
            prepared(torch.from_numpy(calib[i:i + 32]))
    return convert_fx(prepared)


def q8_cmd(q8, *args):
    r = subprocess.run([q8, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"q8 {' '.join(args)}: {r.stderr.strip() or r.stdout.strip()}")
    return r.stdout


def q8_eval(q8, model_path, x_path, y_path):
    out = q8_cmd(q8, "eval", model_path, "--input", x_path, "--labels", y_path, "--threads", "1",
                 "--batch", "500")
    m = re.search(r"(\d+)\s*/\s*(\d+)", out)
    if not m:
        raise RuntimeError(f"q8 eval: cannot read the count of correct samples from: {out!r}")
    return int(m.group(1))


def q8_info_fallbacks(q8, model_path):
    """The nodes `q8 info` reports as computing in fp32 in the quantized model: [(name, op)]."""
    out = q8_cmd(q8, "info", model_path)
    return [tuple(line.split()[:2]) for line in out.splitlines() if "(fp32 fallback)" in line]


def cpu_name():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


def command_line(args, ap):
    cmd = "/usr/bin/python3 scripts/train_fashion_zoo.py"
    extra = [f"--{k.replace('_', '-')} {getattr(args, k)}" for k in ("epochs", "seed", "lr", "batch")
             if getattr(args, k) != ap.get_default(k)]
    return cmd + (" " + " ".join(extra) if extra else "")


def write_report(out_dir, results, args, ap):
    """figures.tsv (read by tests/test_fashion_zoo.cpp) and README.md from figures.json."""
    rows = [results[n] for n in MODELS if n in results]
    with open(os.path.join(out_dir, "figures.tsv"), "w") as f:
        f.write("# Written by scripts/train_fashion_zoo.py; correct top-1 answers out of the 10,000\n"
                "# Fashion-MNIST test images. tests/test_fashion_zoo.cpp reads the first three columns.\n"
                "# model\ttorch_fp32\ttorch_int8\tq8_fp32\tq8_int8\n")
        for r in rows:
            f.write(f"{r['name']}\t{r['fp32']}\t{r['torch_int8']}\t{r.get('q8_fp32', -1)}\t{r.get('q8_int8', -1)}\n")

    def pct(v):
        return f"{v / 100:.2f} %" if v is not None else "-"

    table = ["| model | params | ONNX ops | PyTorch fp32 | q8 fp32 | q8 int8 | q8 loss (points) | "
             "PyTorch int8 (FX, onednn) | goal met | nodes in int8 | nodes in fp32 |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        name = r["name"] + (" (held out)" if r["held_out"] else "")
        if "error" in r:
            table.append(f"| {name} | {r['params']} | {', '.join(r['ops'])} | {pct(r['fp32'])} | - | "
                         f"refused: {r['error']} | - | {pct(r['torch_int8'])} | **no** | - | - |")
            continue
        m = re.search(r"(\d+) of (\d+) nodes run in int8", r["quantize"][0])
        nodes = f"{m.group(1)} of {m.group(2)}" if m else "?"
        # "fp32: NAME (OP[, fallback])" lines of `q8 quantize`, from the same description `q8 info` prints.
        fp32_nodes = ", ".join(f"`{line.split('fp32: ', 1)[1]}" .replace(" (", "` (", 1)
                               for line in r["quantize"][1:] if "fp32: " in line) or "none"
        loss = (r["q8_fp32"] - r["q8_int8"]) / 100
        goal = "yes" if r["q8_int8"] >= r["q8_fp32"] - 30 and r["q8_int8"] >= r["torch_int8"] else "**no**"
        table.append(f"| {name} | {r['params']} | {', '.join(r['ops'])} | {pct(r['fp32'])} | {pct(r['q8_fp32'])} | "
                     f"{pct(r['q8_int8'])} | {loss:+.2f} | {pct(r['torch_int8'])} | {goal} | {nodes} | {fp32_nodes} |")
    def describe(name):  # the class docstring's first paragraph on one line
        return " ".join(line.strip() for line in MODELS[name][0].__doc__.split("\n\n")[0].splitlines())

    files = "\n".join(f"| `{r['name']}.onnx` | {r['size']} bytes, {r['params']} parameters. {describe(r['name'])} "
                      f"Seed {r['seed']}; training took {r['train_s']:.0f} s. |" for r in rows)
    readme = f"""# tests/fashion_zoo/

Small nets of the families people ship, trained on Fashion-MNIST, so that q8's int8 is measured
on trained weights and not only random ones. All files here are written by
`scripts/train_fashion_zoo.py` (after building `build/q8`):

    {command_line(args, ap)}

(torch {torch.__version__}, onnx {onnx.__version__}, numpy {np.__version__}; one thread,
`torch.use_deterministic_algorithms(True)`, seeded, so a rerun on the same torch build reproduces
the models.) Training: Adam, OneCycle schedule with max lr {args.lr}, batch {args.batch},
{args.epochs} epoch(s) over the 60,000 training images shuffled with
`numpy.random.RandomState(seed)`, `torch.manual_seed(seed)`; no augmentation. Inputs are
normalised as in `scripts/train_fashion.py`: `x = (pixel / 255 - 0.2860) / 0.3530`.

| file | contents |
|---|---|
{files}
| `figures.json` | every figure below, per model, as the script measured it |
| `figures.tsv` | the correct answers out of 10,000 per model: PyTorch fp32, PyTorch int8, q8 fp32, q8 int8 |

Every model is exported by `torch.onnx.export` at opset 13 with a dynamic batch axis and
constant folding (so Hardswish is `x * HardSigmoid(x)` and SiLU is `x * Sigmoid(x)`), input
`input` [batch,1,28,28], output `output` [batch,10] logits.

Calibration, for q8 and for PyTorch alike: `models/fashion_calib_256.npy` (256 training images,
see `models/README.md`). q8: `q8 quantize MODEL.onnx --calib models/fashion_calib_256.npy`
(default method: percentile 99.99, bounded by the per-sample extremes as below; int8 weights per
channel). PyTorch: FX graph mode (`prepare_fx` / `convert_fx`) with
`get_default_qconfig_mapping('onednn')` on the `onednn` engine (Debian's torch has no fbgemm);
per-tensor weights for ConvTranspose2d, which PyTorch 1.13 does not quantize per channel.

## Measured

Top-1 on all 10,000 Fashion-MNIST test images ({cpu_name()}); q8 loss = q8 fp32 - q8 int8.
The goal is met when q8 int8 loses at most 0.30 points against q8 fp32 and is at least PyTorch's
int8.

{chr(10).join(table)}

"nodes in int8" and "nodes in fp32" are what `q8 quantize` prints (Quantize/DequantizeLinear not
counted), from the description `q8 info` prints of the int8 file. A node marked "fallback" is one
`q8 info` shows as "(fp32 fallback)": the quantizer gave it int8 operands, but its result is not
quantized, because no int8 node reads it (it is the model's output, the logits, or what reads it,
a ReduceMean over other axes than H and W, has no int8 form in q8's quantizer), so it computes in
fp32 on the dequantized operands. ConvTranspose runs in int8 (one indirect GEMM per output phase).
In the int8 files SiLU runs as two int8 ops, a Sigmoid table and a Mul, and Hardswish as a
HardSigmoid table and a Mul.

`tests/test_fashion_zoo.cpp` (ctest `Trained/FashionZoo.*`) quantizes each model with q8 and
checks on the 10,000 test images that q8's int8 top-1 is at most 0.30 points below q8's fp32,
at least PyTorch's int8 top-1 above, and that q8's fp32 agrees with PyTorch's within 5 images.
A model that misses the goal is instantiated as `DISABLED_Shortfall/FashionZoo.*` instead
(`q8_tests --gtest_also_run_disabled_tests` runs it) until q8 meets it.

## The percentile method and the samples

q8's default range method cuts 0.01 % of a tensor's values, but never below what all but 1 % of
the calibration samples (at least one) reach (engine/quant/calibrate.cpp). Counting values alone
failed efficient_unet: its 28x28 maps give each image hundreds of values, and on the 256
calibration images the 99.99 % cut of the stem's SiLU output (5.19, maximum 5.77) lies below the
maxima of 25 images, that of the first expansion Conv (6.09, maximum 6.78) below those of 57: a
feature that a tenth to a fifth of the images reach, not an outlier. Clipping it took the int8
top-1 to 84.11 % (the logits' mean squared error against fp32 on the first 2,000 test images was
0.24; it is 0.08 with the per-sample bound, 0.04 with `--method minmax`). The error does not
average out: Fashion-MNIST's flat background makes each layer's error a per-channel offset over
most of the map, and `q8 analyze` shows the SQNR falling through the global average pools where
noise would rise (on an all-background image the int8 logits are off by up to 3.1, 5.0 without
the bound, 1.9 with `--method minmax`).

## Licence

Fashion-MNIST is by Zalando Research (https://github.com/zalandoresearch/fashion-mnist) and is
released under the MIT licence.
"""
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write(readme)
    print("\n".join(table))


def measure_q8(args, onnx_path, x_path, y_path, tmp, name):
    """q8's fp32 and int8 top-1 on the test set, what quantize said and what stays in fp32."""
    int8_path = os.path.join(tmp, f"{name}.int8.onnx")
    row = {}
    try:
        row["q8_fp32"] = q8_eval(args.q8, onnx_path, x_path, y_path)
        row["quantize"] = q8_cmd(args.q8, "quantize", onnx_path, "--calib", args.calib,
                                 "--output", int8_path).replace(int8_path, "OUT.onnx").strip().splitlines()
        row["q8_int8"] = q8_eval(args.q8, int8_path, x_path, y_path)
        row["fallbacks"] = q8_info_fallbacks(args.q8, int8_path)
    except RuntimeError as e:
        row["error"] = str(e)
    return row


def save_row(results_path, row):
    """Writes one model's row into figures.json (a run of a subset updates its rows only)."""
    print(f"  {json.dumps(row)}", flush=True)
    results = json.load(open(results_path)) if os.path.exists(results_path) else {}
    results[row["name"]] = row
    with open(results_path, "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
        f.write("\n")
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "tests", "fashion_zoo"))
    ap.add_argument("--data-dir", default=train_fashion.DATA_DIR)
    ap.add_argument("--q8", default=os.path.join(ROOT, "build", "q8"))
    ap.add_argument("--calib", default=os.path.join(ROOT, "models", "fashion_calib_256.npy"))
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated subset")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=4e-3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--train-limit", type=int, default=0, help="use only the first N training images (timing)")
    ap.add_argument("--report-only", action="store_true",
                    help="only rewrite figures.tsv and README.md from figures.json")
    ap.add_argument("--q8-only", action="store_true",
                    help="measure q8 again on the committed models, keeping PyTorch's figures")
    args = ap.parse_args()
    names = args.models.split(",")
    for n in names:
        if n not in MODELS:
            ap.error(f"unknown model {n!r}; known: {', '.join(MODELS)}")
    out_dir = os.path.normpath(args.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    results_path = os.path.join(out_dir, "figures.json")
    if args.report_only:
        write_report(out_dir, json.load(open(results_path)), args, ap)
        return 0

    if args.q8_only:
        # The models and PyTorch's figures stay; q8's columns are measured again (a new q8).
        x_test, y_test = train_fashion.load_split(args.data_dir, "t10k")
        tmp = tempfile.mkdtemp(prefix="q8_fashion_zoo_")
        x_path, y_path = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
        np.save(x_path, x_test)
        np.save(y_path, y_test)
        results = json.load(open(results_path))
        for name in names:
            row = results[name]
            for k in ("q8_fp32", "q8_int8", "quantize", "fallbacks", "error"):
                row.pop(k, None)
            row.update(measure_q8(args, os.path.join(out_dir, f"{name}.onnx"), x_path, y_path, tmp, name))
            results = save_row(results_path, row)
        shutil.rmtree(tmp)
        write_report(out_dir, results, args, ap)
        return 0

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    x_train, y_train = train_fashion.load_split(args.data_dir, "train")
    x_test, y_test = train_fashion.load_split(args.data_dir, "t10k")
    if args.train_limit:
        x_train, y_train = x_train[:args.train_limit], y_train[:args.train_limit]
    calib = np.load(args.calib)
    print(f"train {x_train.shape} test {x_test.shape} calib {calib.shape}", flush=True)

    tmp = tempfile.mkdtemp(prefix="q8_fashion_zoo_")
    x_path, y_path = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
    np.save(x_path, x_test)
    np.save(y_path, y_test)

    for name in names:
        ctor, held_out = MODELS[name]
        seed = args.seed + list(MODELS).index(name)
        torch.manual_seed(seed)
        model = ctor()
        params = sum(p.numel() for p in model.parameters())
        print(f"{name}: {params} parameters, seed {seed}", flush=True)
        train_s = train(model, x_train, y_train, args, seed)

        fp32 = int((train_fashion.predict(model, x_test, 500).argmax(1) == y_test).sum())
        qt = torch_int8(model, calib)
        tq = int((train_fashion.predict(qt, x_test, 500).argmax(1) == y_test).sum())

        onnx_path = os.path.join(out_dir, f"{name}.onnx")
        torch.onnx.export(model, torch.from_numpy(x_test[:1]), onnx_path, opset_version=13,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                          do_constant_folding=True)
        m = onnx.load(onnx_path)
        onnx.checker.check_model(m)
        ops = sorted({n.op_type for n in m.graph.node})

        row = dict(name=name, held_out=held_out, params=params, seed=seed, train_s=train_s,
                   fp32=fp32, torch_int8=tq, ops=ops, size=os.path.getsize(onnx_path))
        row.update(measure_q8(args, onnx_path, x_path, y_path, tmp, name))
        results = save_row(results_path, row)
    shutil.rmtree(tmp)
    write_report(out_dir, results, args, ap)
    return 0


if __name__ == "__main__":
    sys.exit(main())
