// ONNX Runtime as a peer for q8's comparison: median latency of one model on random inputs.
// usage: node ort_bench.js MODEL.onnx THREADS ITERATIONS WARMUP [--per-node] [--exact]
// Prints one JSON line: {"median_ms", "min_ms", "max_ms", "iterations", "threads"}; with
// --per-node also "layers": [{"name", "op", "ms"}], each node's median kernel time from ONNX
// Runtime's own profiler, named as in the model (ORT's "_token_N" suffixes removed), in run order.
// --exact: ONNX Runtime's exact int8 mode on x86 CPUs without VNNI (ort_common.js).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const ort = require('onnxruntime-node');
const {sessionOptions, randomFeeds} = require('./ort_common');

async function main() {
  const [model, threads = '1', iterations = '30', warmup = '5', ...flags] = process.argv.slice(2);
  for (const f of flags)
    if (f !== '--per-node' && f !== '--exact') throw new Error(`unknown option ${f}`);
  const perNode = flags.includes('--per-node');
  const profileDir = perNode ? fs.mkdtempSync(path.join(os.tmpdir(), 'ort_bench-')) : null;
  const session = await ort.InferenceSession.create(model, sessionOptions(threads, {
    exact: flags.includes('--exact'), profilePrefix: perNode ? path.join(profileDir, 'profile') : null}));
  const feeds = randomFeeds(session, model);
  for (let i = 0; i < Number(warmup); i++) await session.run(feeds);
  const ms = [];
  for (let i = 0; i < Number(iterations); i++) {
    const t = process.hrtime.bigint();
    await session.run(feeds);
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  ms.sort((a, b) => a - b);
  const mid = ms.length >> 1;
  const median = ms.length % 2 ? ms[mid] : (ms[mid - 1] + ms[mid]) / 2;
  const result = {median_ms: median, min_ms: ms[0], max_ms: ms[ms.length - 1], iterations: ms.length,
                  threads: Number(threads)};
  if (perNode) {
    // The profile holds every run, warm-up included: keep each node's last `iterations` times.
    await session.release();
    let events;
    try {
      const files = fs.readdirSync(profileDir).filter(f => f.endsWith('.json'));
      if (files.length !== 1) throw new Error(`${model}: ONNX Runtime wrote ${files.length} profiles, not one`);
      events = JSON.parse(fs.readFileSync(path.join(profileDir, files[0]), 'utf8'));
    } finally {
      fs.rmSync(profileDir, {recursive: true, force: true});
    }
    const nodes = new Map();
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
      const name = e.name.slice(0, -'_kernel_time'.length).replace(/_token_\d+$/, '');
      if (!nodes.has(name)) nodes.set(name, {op: e.args.op_name, us: []});
      nodes.get(name).us.push(e.dur);
    }
    result.layers = [...nodes].map(([name, n]) => {
      const us = n.us.slice(-ms.length).sort((a, b) => a - b), h = us.length >> 1;
      return {name, op: n.op, ms: (us.length % 2 ? us[h] : (us[h - 1] + us[h]) / 2) / 1000};
    });
  }
  console.log(JSON.stringify(result));
}
main().catch(e => { console.error(`ort_bench: ${e.message}`); process.exit(1); });
