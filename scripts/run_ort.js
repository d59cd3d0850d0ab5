// ONNX Runtime on .npy inputs (float32, C order), its first output written as .npy: the peer that
// scripts/zoo.py checks q8 against. usage: node scripts/run_ort.js MODEL.onnx IN.npy[,IN2.npy] OUT.npy
const ort = require('onnxruntime-node');
const {loadNpy, saveNpy} = require('../bench/ort_common');

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
