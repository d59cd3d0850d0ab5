// ONNX Runtime as a peer for q8's comparison: median latency of one model on random inputs.
// usage: node ort_bench.js MODEL.onnx THREADS ITERATIONS WARMUP
// Prints one JSON line: {"median_ms", "min_ms", "max_ms", "iterations", "threads"}.
'use strict';
const ort = require('onnxruntime-node');

function randomNormal(n) {
  const out = new Float32Array(n);
  let seed = 12345;
  const uniform = () => ((seed = (seed * 1103515245 + 12345) >>> 0) + 0.5) / 4294967296;
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return out;
}

async function main() {
  const [model, threads = '1', iterations = '30', warmup = '5'] = process.argv.slice(2);
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: Number(threads), interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all', logSeverityLevel: 3,
  });
  const feeds = {};
  const meta = session.inputMetadata || [];
  for (let i = 0; i < session.inputNames.length; i++) {
    const name = session.inputNames[i];
    const m = Array.isArray(meta) ? meta[i] : meta[name];
    let dims = m && m.shape ? m.shape.map(d => (typeof d === 'number' && d > 0 ? d : 1)) : null;
    if (!dims) throw new Error(`${model}: cannot read the shape of input '${name}'`);
    feeds[name] = new ort.Tensor('float32', randomNormal(dims.reduce((a, b) => a * b, 1)), dims);
  }
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
  console.log(JSON.stringify({median_ms: median, min_ms: ms[0], max_ms: ms[ms.length - 1],
                              iterations: ms.length, threads: Number(threads)}));
}
main().catch(e => { console.error(`ort_bench: ${e.message}`); process.exit(1); });
