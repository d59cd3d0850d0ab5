#!/usr/bin/python3
"""Train q8's embedded default model (a small Fashion-MNIST CNN) and write its data.

Maintainer script, not a build dependency. Needs torch, numpy and onnx
(Debian's /usr/bin/python3 with torch 1.13 / onnx 1.12 works). Reads the
Fashion-MNIST IDX files from /usr/share/datasets/fashion-mnist and writes, into
--out-dir (default: the repo's models/ folder):

  fashion_cnn.onnx                     fp32 model, opset 13, dynamic batch axis
  fashion_calib_256.npy                256 normalised training images (calibration)
  fashion_test_500.npy                 first 500 normalised test images
  fashion_test_500_labels.npy          their labels (int64)
  fashion_cnn_test500_fp32_output.npy  PyTorch fp32 logits on those 500 images
  README.md                            provenance, settings and measured accuracy

Everything is seeded and single-threaded, so a rerun reproduces the same files
on the same torch build.
"""
import argparse
import gzip
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

DATA_DIR = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530


def read_idx(path):
    """Parse a gzipped IDX file (unsigned-byte data) into a numpy array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[0:4], "big")
    if magic >> 8 != 0x08:  # 0x08 = unsigned byte
        raise ValueError(f"{path}: unsupported IDX type 0x{magic:08x}")
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {np.prod(dims)} values, got {data.size}")
    return data.reshape(dims)


def load_split(data_dir, prefix):
    images = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    x = ((images.astype(np.float32) / 255.0 - MEAN) / STD).astype(np.float32)
    return x.reshape(-1, 1, 28, 28), labels.astype(np.int64)


def make_model():
    return nn.Sequential(
        nn.Conv2d(1, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
        nn.Linear(128, 10),
    )


@torch.no_grad()
def predict(model, x, batch=1000):
    model.eval()
    out = [model(torch.from_numpy(x[i:i + batch])) for i in range(0, len(x), batch)]
    return torch.cat(out).numpy()


def train(model, x_train, y_train, epochs, lr, batch, seed, after_epoch=None):
    """Adam with a one-cycle schedule over mini-batches in a seeded order; prints each epoch's
    loss (and what `after_epoch()` returns) and returns the seconds spent."""
    rng = np.random.RandomState(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = (len(x_train) + batch - 1) // batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, epochs=epochs, steps_per_epoch=steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    t0 = time.time()
    for epoch in range(epochs):
        model.train()
        perm = torch.from_numpy(rng.permutation(len(x_train)))
        total = 0.0
        for i in range(0, len(perm), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        extra = f" {after_epoch()}" if after_epoch else ""
        print(f"  epoch {epoch + 1}/{epochs}: loss {total / len(perm):.4f}{extra} ({time.time() - t0:.0f}s)",
              flush=True)
    model.eval()
    return time.time() - t0


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=os.path.join(here, "..", "models"))
    ap.add_argument("--data-dir", default=DATA_DIR)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    out_dir = os.path.normpath(args.out_dir)
    os.makedirs(out_dir, exist_ok=True)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)

    x_train, y_train = load_split(args.data_dir, "train")
    x_test, y_test = load_split(args.data_dir, "t10k")
    print(f"train {x_train.shape} test {x_test.shape}", flush=True)

    model = make_model()
    train_s = train(model, x_train, y_train, args.epochs, args.lr, args.batch, args.seed,
                    lambda: f"test top-1 {(predict(model, x_test).argmax(1) == y_test).mean() * 100:.2f}%")

    model.eval()
    logits_test = predict(model, x_test)
    top1_10k = float((logits_test.argmax(1) == y_test).mean())
    x500, y500 = x_test[:500].copy(), y_test[:500].copy()
    logits500 = predict(model, x500).astype(np.float32)
    top1_500 = float((logits500.argmax(1) == y500).mean())
    print(f"fp32 top-1: {top1_10k * 100:.2f}% on 10000, {top1_500 * 100:.2f}% on first 500")

    # Calibration set: 256 training images, chosen with a fixed seed.
    calib_idx = np.sort(np.random.RandomState(args.seed + 1).choice(len(x_train), 256, replace=False))
    calib = x_train[calib_idx].copy()

    onnx_path = os.path.join(out_dir, "fashion_cnn.onnx")
    torch.onnx.export(
        model, torch.from_numpy(x500[:1]), onnx_path,
        opset_version=13, input_names=["input"], output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        do_constant_folding=True)
    import onnx
    m = onnx.load(onnx_path)
    onnx.checker.check_model(m)
    print("onnx ops:", [n.op_type for n in m.graph.node])

    np.save(os.path.join(out_dir, "fashion_calib_256.npy"), calib)
    np.save(os.path.join(out_dir, "fashion_test_500.npy"), x500)
    np.save(os.path.join(out_dir, "fashion_test_500_labels.npy"), y500)
    np.save(os.path.join(out_dir, "fashion_cnn_test500_fp32_output.npy"), logits500)

    cmd = "/usr/bin/python3 scripts/train_fashion.py"
    extra = [f"--{k} {getattr(args, k)}" for k in ("epochs", "seed", "lr", "batch", "threads")
             if getattr(args, k) != ap.get_default(k)]
    if extra:
        cmd += " " + " ".join(extra)
    readme = f"""# models/

q8's embedded default model and the data its tests use. All files are written by
`scripts/train_fashion.py`; regenerate them with

    {cmd}

(torch {torch.__version__}, numpy {np.__version__}, onnx {onnx.__version__};
single-threaded and seeded, so a rerun on the same torch build reproduces them).

| file | contents |
|---|---|
| `fashion_cnn.onnx` | fp32 CNN, ONNX opset 13, input `input` [batch,1,28,28] float32, output `output` [batch,10] logits; batch axis dynamic; constant-folded |
| `fashion_calib_256.npy` | 256 Fashion-MNIST **training** images (indices drawn with `numpy.random.RandomState({args.seed + 1}).choice(60000, 256, replace=False)`, sorted), float32, normalised, shape 256x1x28x28 |
| `fashion_test_500.npy` | the first 500 Fashion-MNIST **test** images, float32, normalised, shape 500x1x28x28 |
| `fashion_test_500_labels.npy` | their labels, int64, shape 500 |
| `fashion_cnn_test500_fp32_output.npy` | the PyTorch fp32 model's logits on `fashion_test_500.npy`, float32, shape 500x10 |

Normalisation: `x = (pixel / 255 - {MEAN}) / {STD}`.

## Model

    nn.Sequential(
        Conv2d(1, 64, 3, padding=1), ReLU(), MaxPool2d(2),
        Conv2d(64, 128, 3, padding=1), ReLU(),
        AdaptiveAvgPool2d((1, 1)), Flatten(), Linear(128, 10))

Exported ONNX graph: {" -> ".join(n.op_type for n in m.graph.node)}.

## Training

Adam, OneCycle schedule with max lr {args.lr}, batch {args.batch}, {args.epochs} epochs over
the 60,000 training images (shuffled with `numpy.random.RandomState({args.seed})`),
`torch.manual_seed({args.seed})`, `torch.use_deterministic_algorithms(True)`,
{args.threads} thread(s); no augmentation. Training took {train_s:.0f} s on CPU.

## Measured fp32 accuracy (PyTorch)

- top-1 on all 10,000 test images: **{top1_10k * 100:.2f}%**
- top-1 on the first 500 test images (`fashion_test_500.npy`): **{top1_500 * 100:.2f}%**

## Licence

Fashion-MNIST is by Zalando Research (https://github.com/zalandoresearch/fashion-mnist)
and is released under the MIT licence. The data files here are derived from it.
"""
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write(readme)

    for name in sorted(os.listdir(out_dir)):
        print(f"  {os.path.getsize(os.path.join(out_dir, name)):>9}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
