#!/usr/bin/python3
"""From a PyTorch model to a faster int8 model with q8, side by side with torch.ao.quantization.

Trains nothing. It takes a PyTorch model, quantizes it with q8 from a DataLoader, and prints fp32
and int8 accuracy and latency for q8 and for PyTorch's own post-training quantization
(torch.ao.quantization, FX graph mode, fbgemm or the
backend this torch build has) on the same model and the same calibration data.

  --model fashion       (default) the embedded Fashion-MNIST CNN: its PyTorch definition from
                        scripts/train_fashion.py with the trained weights of models/fashion_cnn.onnx,
                        calibrated on models/fashion_calib_256.npy, scored on the 500 labelled test
                        images in models/ (top-1 against the labels).
  --model mobilenet_v2  torchvision's MobileNetV2 with random weights (nothing is downloaded), on
                        random inputs: top-1 is agreement with PyTorch's fp32 result, which with
                        random weights says little; the SQNR against PyTorch fp32 says more.

Run from the repository root, with the module built:
  PYTHONPATH=build/python /usr/bin/python3 examples/pytorch_to_int8.py [--model fashion|mobilenet_v2]
"""
import argparse
import importlib.util
import os
import sys
import time
import warnings

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

import q8

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fashion_model():
    """The embedded model as PyTorch: scripts/train_fashion.py's definition, models/'s weights."""
    import onnx
    from onnx import numpy_helper

    spec = importlib.util.spec_from_file_location("train_fashion", os.path.join(ROOT, "scripts", "train_fashion.py"))
    train_fashion = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_fashion)
    net = train_fashion.make_model()
    graph = onnx.load(os.path.join(ROOT, "models", "fashion_cnn.onnx")).graph
    weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in graph.initializer}
    net.load_state_dict(weights)  # the initializers carry the state_dict's names ("0.weight", ...)
    return net.eval()


def data(name, calib_samples, test_samples):
    """(model, calibration DataLoader, test DataLoader, labelled?) for --model."""
    if name == "fashion":
        net = fashion_model()
        calib = np.load(os.path.join(ROOT, "models", "fashion_calib_256.npy"))[:calib_samples]
        x = np.load(os.path.join(ROOT, "models", "fashion_test_500.npy"))[:test_samples]
        y = np.load(os.path.join(ROOT, "models", "fashion_test_500_labels.npy"))[:test_samples]
        labelled = True
    else:
        import torchvision

        torch.manual_seed(0)
        net = torchvision.models.mobilenet_v2(weights=None).eval()
        rng = np.random.default_rng(0)
        calib = rng.standard_normal((calib_samples, 3, 224, 224), dtype=np.float32)
        x = rng.standard_normal((test_samples, 3, 224, 224), dtype=np.float32)
        with torch.no_grad():
            y = net(torch.from_numpy(x)).argmax(1).numpy()  # score agreement with PyTorch fp32
        labelled = False
    calib_loader = DataLoader(TensorDataset(torch.from_numpy(calib), torch.zeros(len(calib))), batch_size=32)
    test_loader = DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=50)
    return net, calib_loader, test_loader, labelled


def predict(run, loader):
    """(outputs, labels) over the whole loader."""
    outputs, labels = [], []
    for x, y in loader:
        outputs.append(run(x))
        labels.append(y.numpy())
    return np.concatenate(outputs), np.concatenate(labels)


def sqnr_db(reference, y):
    noise = float(np.sum((reference.astype(np.float64) - y) ** 2))
    return 99.0 if noise == 0 else min(99.0, 10 * np.log10(float(np.sum(reference.astype(np.float64) ** 2)) / noise))


def latency_ms(run, x, iterations):
    for _ in range(5):
        run(x)
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["fashion", "mobilenet_v2"], default="fashion")
    ap.add_argument("--calib-samples", type=int, default=None, help="default: 256 (fashion), 32 (mobilenet_v2)")
    ap.add_argument("--test-samples", type=int, default=None, help="default: 500 (fashion), 64 (mobilenet_v2)")
    ap.add_argument("--iterations", type=int, default=None, help="timed runs per engine (default 200 / 20)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    small = args.model == "fashion"
    calib_samples = args.calib_samples or (256 if small else 32)
    test_samples = args.test_samples or (500 if small else 64)
    iterations = args.iterations or (200 if small else 20)
    torch.set_num_threads(args.threads)
    net, calib_loader, test_loader, labelled = data(args.model, calib_samples, test_samples)
    example = next(iter(test_loader))[0][:1]

    # q8: export, quantize from the DataLoader, run.
    fp32 = q8.from_torch(net, example)
    t0 = time.perf_counter()
    int8 = q8.quantize(fp32, calib_loader)
    q8_quantize_s = time.perf_counter() - t0
    q8_fp32, q8_int8 = q8.Session(fp32, threads=args.threads), q8.Session(int8, threads=args.threads)

    # PyTorch's own post-training static quantization of the same module on the same batches.
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    # fbgemm where this torch build has it (pip wheels); Debian's torch has onednn and qnnpack.
    supported = torch.backends.quantized.supported_engines
    backend = next(e for e in ("fbgemm", "x86", "onednn", "qnnpack") if e in supported)
    torch.backends.quantized.engine = backend
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        prepared = prepare_fx(net, get_default_qconfig_mapping(backend), example_inputs=(example,))
        with torch.no_grad():
            for x, _ in calib_loader:
                prepared(x)
        torch_int8 = convert_fx(prepared)
        torch_quantize_s = time.perf_counter() - t0

    def torch_run(module):
        def run(x):
            with torch.no_grad():
                return module(torch.as_tensor(x)).numpy()
        return run

    def q8_run(session):
        return lambda x: session.run(np.asarray(x))["output"]

    engines = [
        ("PyTorch fp32", torch_run(net)),
        (f"PyTorch int8 (torch.ao FX, {backend})", torch_run(torch_int8)),
        ("q8 fp32", q8_run(q8_fp32)),
        ("q8 int8", q8_run(q8_int8)),
    ]
    x1 = example.numpy()
    print(f"model: {args.model}  ({'top-1 against labels' if labelled else 'top-1 agreement with PyTorch fp32'}, "
          f"{test_samples} test samples, {calib_samples} calibration samples)")
    print(f"cpu: {q8.cpu_description()}; q8 kernels: {q8.active_isa()}; threads: {args.threads}")
    print(f"quantization time: q8 {q8_quantize_s:.2f} s, torch.ao {torch_quantize_s:.2f} s")
    print(f"{'engine':36s} {'top-1':>8s} {'SQNR vs PyTorch fp32':>21s} {'latency (batch 1)':>18s}")
    results = {}
    reference = None
    for name, run in engines:
        out, labels = predict(run, test_loader)
        reference = out if reference is None else reference
        acc = 100.0 * float(np.mean(out.argmax(1) == labels))
        ms = latency_ms(run, x1, iterations)
        results[name] = (acc, ms)
        print(f"{name:36s} {acc:7.2f}% {sqnr_db(reference, out):18.1f} dB {ms:15.3f} ms")
    base = results["PyTorch fp32"][1]
    print(f"speed-up over PyTorch fp32: torch.ao int8 {base / results[engines[1][0]][1]:.2f}x, "
          f"q8 fp32 {base / results['q8 fp32'][1]:.2f}x, q8 int8 {base / results['q8 int8'][1]:.2f}x; "
          f"q8 int8 over q8 fp32 {results['q8 fp32'][1] / results['q8 int8'][1]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
