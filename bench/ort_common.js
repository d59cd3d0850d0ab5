// What the scripts that run ONNX Runtime as a peer share (bench/ort_bench.js, bench/ort_agreement.js,
// scripts/run_ort.js): its session options, the seeded inputs both engines are fed, and float32
// .npy files (C order, little-endian).
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

// exact: ONNX Runtime's session option session.x64quantprecision. On x86 CPUs without VNNI its
// u8 x s8 products otherwise go through the saturating vpmaddubsw (the int16 sum of a pair of
// products clips when both weights of the pair are large), and with it ONNX Runtime multiplies
// such layers u8 x u8 instead, without saturation. On VNNI CPUs it changes nothing.
function sessionOptions(threads, {exact = false, profilePrefix = null} = {}) {
  return {
    intraOpNumThreads: Number(threads), interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all', logSeverityLevel: 3,
    ...(profilePrefix ? {enableProfiling: true, profileFilePrefix: profilePrefix} : {}),
    ...(exact ? {extra: {session: {x64quantprecision: '1'}}} : {}),
  };
}

// n standard-normal floats (Box-Muller over a 32-bit LCG) from `seed`: the same numbers on every
// machine, so both engines and every run see the same input.
function randomNormal(n, seed = 12345) {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  const uniform = () => ((s = (s * 1103515245 + 12345) >>> 0) + 0.5) / 4294967296;
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return out;
}

// The dimensions of each input of `session` (a symbolic or unknown dimension, the batch, is 1).
function inputDims(session, model) {
  const meta = session.inputMetadata || [];
  return session.inputNames.map((name, i) => {
    const m = Array.isArray(meta) ? meta[i] : meta[name];
    if (!m || !m.shape) throw new Error(`${model}: cannot read the shape of input '${name}'`);
    return m.shape.map(d => (typeof d === 'number' && d > 0 ? d : 1));
  });
}

// Seeded float32 feeds for every input of `session`; input i takes seed + i.
function randomFeeds(session, model, seed = 12345) {
  const feeds = {};
  inputDims(session, model).forEach((dims, i) => {
    feeds[session.inputNames[i]] = new ort.Tensor('float32', randomNormal(dims.reduce((a, b) => a * b, 1), seed + i), dims);
  });
  return feeds;
}

function saveNpy(file, data, dims) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims.join(', ')}${dims.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';  // the data starts 64-byte aligned
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head.writeUInt16LE(header.length, 8);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'),
                                        Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

// {data, dims} of a float32 .npy file.
function loadNpy(file) {
  const b = fs.readFileSync(file);
  if (b.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file}: not an .npy file`);
  const v1 = b[6] === 1, start = v1 ? 10 : 12, len = v1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const header = b.toString('latin1', start, start + len);
  if (!/'descr':\s*'<f4'/.test(header) || /'fortran_order':\s*True/.test(header))
    throw new Error(`${file}: not a C-order float32 array`);
  const dims = header.match(/'shape':\s*\(([^)]*)\)/)[1].split(',').filter(d => d.trim()).map(Number);
  const n = dims.reduce((a, d) => a * d, 1), bytes = b.subarray(start + len);
  if (bytes.byteLength !== 4 * n) throw new Error(`${file}: ${bytes.byteLength} data bytes for shape (${dims})`);
  return {data: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)), dims};
}

module.exports = {sessionOptions, randomNormal, randomFeeds, saveNpy, loadNpy};
