// ONNX Runtime on .npy inputs (float32, C order), its first output written as .npy: the peer that
// scripts/zoo.py checks q8 against. usage: node scripts/run_ort.js MODEL.onnx IN.npy[,IN2.npy] OUT.npy
const fs = require('fs');
const ort = require('onnxruntime-node');

function loadNpy(path) {
  const b = fs.readFileSync(path);
  if (b.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(path + ': not a .npy file');
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = b.toString('latin1', start, start + hlen);
  if (!/'descr':\s*'<f4'/.test(header) || /'fortran_order':\s*True/.test(header))
    throw new Error(path + ': expected a C-order float32 array');
  const dims = header.match(/'shape':\s*\(([^)]*)\)/)[1].split(',').filter(s => s.trim()).map(Number);
  const off = start + hlen, n = dims.reduce((a, d) => a * d, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; ++i) data[i] = b.readFloatLE(off + 4 * i);
  return {data, dims};
}

function saveNpy(path, data, dims) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims.join(', ')}${dims.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';  // total header a multiple of 64
  const h = Buffer.alloc(10);
  h.write('\x93NUMPY', 0, 'latin1');
  h[6] = 1, h[7] = 0;
  h.writeUInt16LE(header.length, 8);
  const body = Buffer.alloc(4 * data.length);
  for (let i = 0; i < data.length; ++i) body.writeFloatLE(data[i], 4 * i);
  fs.writeFileSync(path, Buffer.concat([h, Buffer.from(header, 'latin1'), body]));
}

async function main() {
  const [model, inputs, out] = process.argv.slice(2);
  const s = await ort.InferenceSession.create(model, {intraOpNumThreads: 1, logSeverityLevel: 3});
  const feeds = {};
  inputs.split(',').forEach((f, i) => {
    const x = loadNpy(f);
    feeds[s.inputNames[i]] = new ort.Tensor('float32', x.data, x.dims);
  });
  const y = (await s.run(feeds))[s.outputNames[0]];
  saveNpy(out, y.data, y.dims);
}
main().catch(e => { console.error(e.message); process.exit(1); });
