#!/usr/bin/python3
"""q8 next to PyTorch's own int8 and ONNX Runtime on the same network, on this CPU, in one run.

  bench/compare_torch.py [--models resnet18,mobilenet_v2] [--threads 1] [--iterations 30]
                         [--rounds 3] [--q8 build/q8] [--keep DIR]

For each model, torchvision's quantizable version (random weights, seeded; random BatchNorm
statistics so that folding them matters) is measured six ways, batch 1:
  - PyTorch fp32, and PyTorch int8 as torch.ao.quantization builds it (eager mode: fuse_model,
    the onednn qconfig, 32 calibration samples, convert; engine onednn, since Debian's torch
    has no fbgemm);
  - the same weights through torch.onnx.export (opset 13): q8 fp32, q8 int8 (`q8 quantize` on
    the same 32 samples), ONNX Runtime fp32, and ONNX Runtime running q8's int8 file.
The engines take turns: --rounds rounds, each timing every engine for --iterations runs after 5
warm-up runs; the table gives the median of the round medians and each time over q8 int8's.
Accuracy: the SQNR of each int8 output against its own fp32 output on 8 standard-normal samples.
The header names the CPU, q8's kernel path and PyTorch's quantized engine and CPU capability.
ONNX Runtime comes from npm as for bench/compare_ort.sh ($Q8_ORT_CACHE, default ~/.cache/q8-ort).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def build(name):
    """torchvision's quantizable model, random weights, and its input size."""
    import torch
    import torchvision.models.quantization as tq
    torch.manual_seed(0)
    model = {"resnet18": tq.resnet18, "mobilenet_v2": tq.mobilenet_v2}[name](weights=None, quantize=False)
    rng = np.random.default_rng(sum(map(ord, name)))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.from_numpy(rng.normal(0, 0.1, n).astype(np.float32)))
            m.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, n).astype(np.float32)))
    return model.eval()


def torch_int8(model, calib):
    """Eager-mode post-training quantization as torchvision's quantizable models document it."""
    import copy
    import torch
    torch.backends.quantized.engine = "onednn"
    q = copy.deepcopy(model)
    q.fuse_model()
    q.qconfig = torch.ao.quantization.get_default_qconfig("onednn")
    torch.ao.quantization.prepare(q, inplace=True)
    with torch.no_grad():
        for i in range(0, len(calib), 8):
            q(torch.from_numpy(calib[i:i + 8]))
    torch.ao.quantization.convert(q, inplace=True)
    return q.eval()


def time_torch(model, x, iterations):
    import torch
    t = torch.from_numpy(x)
    times = []
    with torch.inference_mode():
        for _ in range(5):
            model(t)
        for _ in range(iterations):
            t0 = time.perf_counter()
            model(t)
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def time_q8(q8, path, threads, iterations):
    r = subprocess.run([q8, "bench", path, "--threads", str(threads), "--iterations", str(iterations), "--json"],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)["median_ms"]


def time_ort(path, threads, iterations):
    r = subprocess.run(["node", os.path.join(HERE, "ort_bench.js"), path, str(threads), str(iterations), "5"],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)["median_ms"]


def run_q8(q8, path, x, tmp):
    xi, yo = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
    np.save(xi, x)
    subprocess.run([q8, "run", path, "--input", xi, "--output", yo], check=True, capture_output=True)
    return np.load(yo)


def sqnr_db(y, ref):
    err = float(np.sum((y.astype(np.float64) - ref) ** 2))
    return float("inf") if err == 0 else 10 * np.log10(float(np.sum(ref.astype(np.float64) ** 2)) / err)


def torch_capability():
    import torch
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage" in line:
            return line.strip().lstrip("- ")
    return "CPU capability usage: unknown"


def ensure_ort():
    cache = os.environ.get("Q8_ORT_CACHE", os.path.expanduser("~/.cache/q8-ort"))
    if not os.path.isdir(os.path.join(cache, "node_modules", "onnxruntime-node")):
        print(f"installing onnxruntime-node into {cache} ...", file=sys.stderr)
        subprocess.run(["npm", "install", "--prefix", cache, "--ignore-scripts", "--no-audit", "--no-fund",
                        "onnxruntime-node@1.30.0"], check=True, stdout=subprocess.DEVNULL)
    os.environ["NODE_PATH"] = os.path.join(cache, "node_modules")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="resnet18,mobilenet_v2")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--q8", default=os.path.join(ROOT, "build", "q8"))
    p.add_argument("--keep", help="write the ONNX files here instead of a temporary folder")
    args = p.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    ensure_ort()
    tmp = args.keep or tempfile.mkdtemp(prefix="q8-compare-torch-")
    os.makedirs(tmp, exist_ok=True)
    rng = np.random.default_rng(0)
    calib = rng.standard_normal((32, 3, 224, 224), dtype=np.float32)
    samples = rng.standard_normal((8, 3, 224, 224), dtype=np.float32)
    x1 = samples[:1]
    try:
        for name in args.models.split(","):
            model = build(name)
            fp32_path, int8_path = os.path.join(tmp, name + ".onnx"), os.path.join(tmp, name + ".int8.onnx")
            torch.onnx.export(model, torch.from_numpy(x1), fp32_path, opset_version=13, input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
            calib_path = os.path.join(tmp, name + ".calib.npy")
            np.save(calib_path, calib)
            subprocess.run([args.q8, "quantize", fp32_path, "--calib", calib_path, "--output", int8_path],
                           check=True, capture_output=True)
            qmodel = torch_int8(model, calib)

            if name == args.models.split(",")[0]:
                cpu = subprocess.run([args.q8, "info", fp32_path], capture_output=True, text=True).stdout
                lines = [l for l in cpu.splitlines() if l.startswith(("cpu:", "kernel path:"))]
                print("\n".join(lines))
                print(f"torch {torch.__version__}: quantized engine {torch.backends.quantized.engine}, "
                      f"{torch_capability()}; threads {args.threads}, "
                      f"batch 1, {args.rounds} rounds of {args.iterations} iterations")

            # Accuracy: each int8 against its own fp32.
            with torch.no_grad():
                t_fp32 = model(torch.from_numpy(samples)).numpy()
                t_int8 = qmodel(torch.from_numpy(samples)).numpy()
            q_fp32 = run_q8(args.q8, fp32_path, samples, tmp)
            q_int8 = run_q8(args.q8, int8_path, samples, tmp)

            engines = {
                "PyTorch fp32": lambda: time_torch(model, x1, args.iterations),
                "PyTorch int8 (onednn)": lambda: time_torch(qmodel, x1, args.iterations),
                "q8 fp32": lambda: time_q8(args.q8, fp32_path, args.threads, args.iterations),
                "q8 int8": lambda: time_q8(args.q8, int8_path, args.threads, args.iterations),
                "ORT fp32": lambda: time_ort(fp32_path, args.threads, args.iterations),
                "ORT int8 (q8's file)": lambda: time_ort(int8_path, args.threads, args.iterations),
            }
            rounds = {k: [] for k in engines}
            for _ in range(args.rounds):
                for k, f in engines.items():
                    rounds[k].append(f())
            ms = {k: statistics.median(v) for k, v in rounds.items()}
            sqnr = {"PyTorch int8 (onednn)": sqnr_db(t_int8, t_fp32), "q8 int8": sqnr_db(q_int8, q_fp32)}
            print(f"\n{name}")
            print(f"  {'engine':24s} {'ms':>9s} {'/ q8 int8':>10s} {'SQNR vs own fp32':>17s}")
            for k, v in ms.items():
                s = f"{sqnr[k]:.1f} dB" if k in sqnr else ""
                print(f"  {k:24s} {v:9.3f} {v / ms['q8 int8']:10.2f} {s:>17s}")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
