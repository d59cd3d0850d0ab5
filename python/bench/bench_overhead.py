#!/usr/bin/python3
"""Per-call overhead of q8's Python session.run over the C++ API, on the embedded model.

Both loops run in this one process on the same Session and the same input: the C++ one is
Session::run(inputs, outputs) on q8::Tensors in a tight C++ loop (what a C++ program does,
outputs reused, no allocation), the Python one is session.run(x) from Python (argument
checks, the input read in place, a new numpy array for the output, the result dict, the GIL
released and retaken, the session's lock). Calls alternate one by one between the two, so drift
on a shared machine affects both alike. The overhead is reported as the difference of the two
loops' 10th percentiles (load from other processes only adds time, so the fast tail is each
loop's own cost), of their fastest calls, and as the median of the paired differences (Python
call minus the C++ call next to it; on a noisy machine this one carries the noise). A Relu
model on 10 values, whose run costs almost nothing, shows the overhead alone.

  PYTHONPATH=build/python /usr/bin/python3 python/bench/bench_overhead.py [--calls 5000] [--json]
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

import q8

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def python_calls(run, x, n):
    t = []
    clock = time.perf_counter
    for _ in range(n):
        t0 = clock()
        run(x)
        t.append(clock() - t0)
    return t


def measure(session, x, calls, form):
    """Alternates one Python call and one C++ call (timed inside C++), `calls` times, so both
    see the same machine state; returns medians and the median of the paired differences."""
    run = session.run
    arg = {"input": x} if form == "dict" else x
    cpp_run = session._time_cpp_runs
    clock = time.perf_counter
    for _ in range(200):  # warm-up: plans, caches, allocator
        run(arg)
        cpp_run(x, 1)
    py, cpp = [], []
    for _ in range(calls):
        t0 = clock()
        run(arg)
        py.append(clock() - t0)
        cpp.append(cpp_run(x, 1)[0])
    diff = sorted(p - c for p, c in zip(py, cpp))

    def q(v, f):
        return sorted(v)[int(f * (len(v) - 1))]

    return {
        "form": form,
        "cpp_us": 1e6 * statistics.median(cpp),
        "python_us": 1e6 * statistics.median(py),
        "cpp_p10_us": 1e6 * q(cpp, 0.1),
        "python_p10_us": 1e6 * q(py, 0.1),
        # The 10th percentiles: a neighbour's load only ever adds time, so the fast tail of each
        # loop is its own cost; their difference is the overhead with the noise left out.
        "overhead_p10_us": 1e6 * (q(py, 0.1) - q(cpp, 0.1)),
        "overhead_median_paired_us": 1e6 * statistics.median(diff),
        "overhead_min_us": 1e6 * (min(py) - min(cpp)),
    }


def tiny_model():
    """A model whose run costs next to nothing (Relu on 10 values), built with the onnx
    package: what is left of a call is overhead."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["output"], name="relu")], "tiny",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 10])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 10])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return q8.Model.load_from_memory(m.SerializeToString(), "tiny.onnx")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=5000, help="paired calls per model and form")
    ap.add_argument("--no-tiny", action="store_true", help="skip the Relu model (it needs the onnx package)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    fp32 = q8.Model.load(os.path.join(ROOT, "models", "fashion_cnn.onnx"))
    int8 = q8.quantize(fp32, np.load(os.path.join(ROOT, "models", "fashion_calib_256.npy")), progress=False)
    x = np.ascontiguousarray(np.load(os.path.join(ROOT, "models", "fashion_test_500.npy"))[:1])
    results = []
    models = [("fashion_cnn int8", int8, x), ("fashion_cnn fp32", fp32, x)]
    if not args.no_tiny:
        models.append(("Relu [1,10] fp32", tiny_model(), np.ones((1, 10), np.float32)))
    for name, model, inp in models:
        session = q8.Session(model, threads=1)
        for form in ("array", "dict"):
            r = measure(session, inp, args.calls, form)
            r["model"] = name
            results.append(r)
    doc = {"cpu": cpu_model(), "isa": q8.active_isa(), "python": platform.python_version(),
           "numpy": np.__version__, "calls": args.calls, "results": results}
    if args.json:
        print(json.dumps(doc))
        return 0
    print(f"cpu: {doc['cpu']} ({q8.cpu_description()}), kernels {doc['isa']}, Python {doc['python']}, "
          f"numpy {doc['numpy']}; {args.calls} paired calls, batch 1, 1 thread")
    print(f"{'model':18s} {'session.run(...)':16s} {'C++ p10':>10s} {'Python p10':>11s} {'overhead p10':>13s} "
          f"{'min-min':>8s} {'median of pairs':>16s} {'C++ median':>11s}")
    for r in results:
        arg = "x" if r["form"] == "array" else "{'input': x}"
        print(f"{r['model']:18s} {arg:16s} {r['cpp_p10_us']:7.1f} us {r['python_p10_us']:8.1f} us "
              f"{r['overhead_p10_us']:10.2f} us {r['overhead_min_us']:5.2f} us {r['overhead_median_paired_us']:13.2f} us "
              f"{r['cpp_us']:8.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
