#!/usr/bin/python3
"""q8 against ONNX Runtime layer by layer, on the same file: where one engine loses time.

    bench/compare_layers.py MODEL.onnx [--threads N] [--iterations N] [--rounds R] [--top K]

Runs `q8 bench MODEL --per-layer --json` and ONNX Runtime's own profiler
(`bench/ort_bench.js MODEL N ITERATIONS 3 --per-node`, with --ort-exact in its exact int8 mode)
alternately, R rounds (default 3), and
prints, per node of the model, the median over rounds of each engine's median time and their
ratio, sorted by the time q8 loses (q8 - ORT), then totals. Nodes match by their ONNX name: q8's
steps are named after the node they run; ORT's fused nodes keep the name of the node they
replace (a QDQ Conv becomes a QLinearConv of the Conv's name), and its NCHWc nodes (fp32) are
named after their output, which leads back through the activations fused into them (Relu, Clip)
to the node q8 names the step after. Steps only one engine has (q8's
layout changes, ORT's Transpose and QuantizeLinear of the input) are listed apart. ONNX Runtime
comes from $Q8_ORT_CACHE as for bench/compare_ort.sh, which installs it. The profiler adds a
little time per node to ORT's figures, so the totals are the ones to compare with
compare_ort.sh's, the per-node ratios to find where the time goes.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run_json(cmd, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"compare_layers: {' '.join(cmd)} failed: {r.stderr.strip()}")
    lines = r.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
        result["layers"]
        return result
    except (IndexError, ValueError, KeyError, TypeError):
        sys.exit(f"compare_layers: {' '.join(cmd)} printed no per-layer JSON")


def nchwc_names(model_path, q8_names):
    """A function from the value an ORT NCHWc node is named after ("<value>_nchwc") to the q8 step
    that does its work (or None), or None when the onnx package is missing."""
    try:
        import onnx
    except ImportError:
        return None
    producer = {}
    g = onnx.load(model_path, load_external_data=False).graph
    for n in g.node:
        for o in n.output:
            producer[o] = n
    def resolve(value):
        n = producer.get(value)
        while n is not None and n.name not in q8_names and n.op_type in ("Relu", "Clip", "LeakyRelu") and n.input:
            n = producer.get(n.input[0])
        return n.name if n is not None and n.name in q8_names else None
    return resolve


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--top", type=int, default=0, help="print only the K nodes where q8 loses most")
    ap.add_argument("--q8", default=os.path.join(ROOT, "build", "q8"))
    ap.add_argument("--ort-exact", action="store_true",
                    help="ONNX Runtime in its exact int8 mode (bench/ort_bench.js --exact)")
    a = ap.parse_args()
    if not os.path.isfile(a.model):
        sys.exit(f"compare_layers: {a.model}: no such file")
    cache = os.environ.get("Q8_ORT_CACHE", os.path.expanduser("~/.cache/q8-ort"))
    if not os.path.isdir(os.path.join(cache, "node_modules", "onnxruntime-node")):
        sys.exit(f"compare_layers: no onnxruntime-node in {cache} (bench/compare_ort.sh installs it)")
    env = dict(os.environ, NODE_PATH=os.path.join(cache, "node_modules"))

    q8_runs, ort_runs = [], []
    for _ in range(a.rounds):
        q8_runs.append(run_json([a.q8, "bench", a.model, "--per-layer", "--json", "--threads", str(a.threads),
                                 "--iterations", str(a.iterations)]))
        ort_runs.append(run_json(["node", os.path.join(HERE, "ort_bench.js"), a.model, str(a.threads),
                                  str(a.iterations), "3", "--per-node"] + (["--exact"] if a.ort_exact else []), env))

    def per_layer(runs):
        order, ops, times = [], {}, {}
        for r in runs:
            seen = {}
            for layer in r["layers"]:  # a name may repeat (q8's conversion steps): sum them
                seen[layer["name"]] = seen.get(layer["name"], 0.0) + layer["ms"]
                ops.setdefault(layer["name"], layer["op"])
            for name, ms in seen.items():
                if name not in times:
                    order.append(name)
                times.setdefault(name, []).append(ms)
        return order, ops, {n: statistics.median(t) for n, t in times.items()}

    q_order, q_ops, q_ms = per_layer(q8_runs)
    resolve = nchwc_names(a.model, set(q_order))
    for r in ort_runs:
        for layer in r["layers"]:
            if resolve and layer["name"].endswith("_nchwc") and layer["name"] not in q_ops:
                layer["name"] = resolve(layer["name"][: -len("_nchwc")]) or layer["name"]
    o_order, o_ops, o_ms = per_layer(ort_runs)
    both = [n for n in q_order if n in o_ms]
    rows = sorted(both, key=lambda n: q_ms[n] - o_ms[n], reverse=True)
    if a.top:
        rows = rows[: a.top]
    print(f"{a.model}: {a.threads} thread(s), {a.iterations} iterations, {a.rounds} rounds; median of medians, ms")
    w = max([len(n) for n in rows] + [4])
    print(f"{'node':<{w}}  {'q8 op':<18} {'q8':>8}  {'ORT op':<18} {'ORT':>8}  {'q8/ORT':>6}  {'q8-ORT':>7}")
    for n in rows:
        ratio = q_ms[n] / o_ms[n] if o_ms[n] > 0 else float("inf")
        print(f"{n:<{w}}  {q_ops[n][:18]:<18} {q_ms[n]:8.3f}  {o_ops[n][:18]:<18} {o_ms[n]:8.3f}  {ratio:6.2f}  "
              f"{q_ms[n] - o_ms[n]:+7.3f}")
    only_q = [n for n in q_order if n not in o_ms]
    only_o = [n for n in o_order if n not in q_ms]
    for title, names, ms, ops in (("q8 only", only_q, q_ms, q_ops), ("ORT only", only_o, o_ms, o_ops)):
        if names:
            print(f"{title}: " + ", ".join(f"{n} ({ops[n]}) {ms[n]:.3f}" for n in names))
    def ratio(a, b):
        return f"{a / b:.2f}" if b > 0 else "-"
    tq, to = sum(q_ms[n] for n in both), sum(o_ms[n] for n in both)
    print(f"matched nodes: q8 {tq:.3f} ms, ORT {to:.3f} ms, ratio {ratio(tq, to)}; "
          f"unmatched: q8 {sum(q_ms[n] for n in only_q):.3f} ms, ORT {sum(o_ms[n] for n in only_o):.3f} ms")
    qm = statistics.median(r["median_ms"] for r in q8_runs)
    om = statistics.median(r["median_ms"] for r in ort_runs)
    print(f"whole run (ORT profiling): q8 {qm:.3f} ms, ORT {om:.3f} ms, ratio {ratio(qm, om)}")


if __name__ == "__main__":
    main()
