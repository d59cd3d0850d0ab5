// How far each engine's int8 output lies from the fp32 model's: q8 and ONNX Runtime on the same
// int8 file, on the same seeded inputs. Speed says little when one engine's answer is off.
// usage: node ort_agreement.js FP32.onnx INT8.onnx Q8_BINARY [INPUTS]
// Runs INPUTS (default 4) seeded standard-normal inputs through ONNX Runtime's fp32 session (the
// reference), ONNX Runtime's int8 session as it runs by default and with --exact (ort_common.js),
// and `Q8_BINARY run` on the int8 file, and prints per engine the SQNR of all its outputs against
// the reference, 10 log10(sum ref^2 / sum (out - ref)^2), and, for a classifier (a first output
// of shape [1, classes]), how many of the inputs keep the reference's top-1 class, then the
// largest difference between q8's int8 outputs and ONNX Runtime's exact ones.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const {execFileSync} = require('child_process');
const ort = require('onnxruntime-node');
const {sessionOptions, randomFeeds, saveNpy, loadNpy} = require('./ort_common');

function argmax(a) {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

async function main() {
  const [fp32, int8, q8, inputs = '4'] = process.argv.slice(2);
  if (!q8) throw new Error('usage: node ort_agreement.js FP32.onnx INT8.onnx Q8_BINARY [INPUTS]');
  if (!/^[1-9][0-9]*$/.test(inputs)) throw new Error(`INPUTS wants a positive integer, got '${inputs}'`);
  const ref = await ort.InferenceSession.create(fp32, sessionOptions(1));
  const engines = [
    {name: 'q8 int8'},
    {name: 'ORT int8', session: await ort.InferenceSession.create(int8, sessionOptions(1))},
    {name: 'ORT int8 --exact', session: await ort.InferenceSession.create(int8, sessionOptions(1, {exact: true}))},
  ];
  for (const e of engines) Object.assign(e, {signal: 0, noise: 0, top1: 0});
  let q8VsExact = 0, classifier = false;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ort_agreement-'));
  try {
    for (let k = 0; k < Number(inputs); k++) {
      const feeds = randomFeeds(ref, fp32, 1000 + 100 * k);
      const refOut = Object.values(await ref.run(feeds));
      const expected = refOut.map(t => t.data);
      classifier = refOut[0].dims.length === 2 && refOut[0].dims[0] === 1 && refOut[0].dims[1] > 1;
      // q8 reads the same inputs from .npy files, in the graph's input order, and writes every output.
      const args = ['run', int8];
      ref.inputNames.forEach((name, i) => {
        const file = path.join(dir, `in${i}.npy`);
        saveNpy(file, feeds[name].data, feeds[name].dims);
        args.push('--input', file);
      });
      const outFiles = ref.outputNames.map((_, i) => path.join(dir, `out${i}.npy`));
      for (const f of outFiles) args.push('--output', f);
      execFileSync(q8, args, {stdio: ['ignore', 'ignore', 'inherit']});
      const outputs = [outFiles.map(f => loadNpy(f).data)];
      for (const e of engines.slice(1)) outputs.push(Object.values(await e.session.run(feeds)).map(t => t.data));
      engines.forEach((e, j) => {
        outputs[j].forEach((out, o) => {
          if (out.length !== expected[o].length) throw new Error(`${e.name}: output ${o} has ${out.length} values, not ${expected[o].length}`);
          for (let i = 0; i < out.length; i++) {
            e.signal += expected[o][i] * expected[o][i];
            e.noise += (out[i] - expected[o][i]) ** 2;
          }
        });
        if (argmax(outputs[j][0]) === argmax(expected[0])) e.top1++;
      });
      outputs[0].forEach((out, o) => {
        for (let i = 0; i < out.length; i++) q8VsExact = Math.max(q8VsExact, Math.abs(out[i] - outputs[2][o][i]));
      });
    }
  } finally {
    fs.rmSync(dir, {recursive: true, force: true});
  }
  console.log(`int8 outputs against ONNX Runtime's fp32 outputs, ${inputs} seeded input${inputs === '1' ? '' : 's'}:`);
  for (const e of engines) {
    const sqnr = e.noise > 0 ? (10 * Math.log10(e.signal / e.noise)).toFixed(2) + ' dB' : 'identical';
    console.log(`  ${e.name.padEnd(18)} SQNR ${sqnr.padStart(9)}` + (classifier ? `   top-1 kept ${e.top1}/${inputs}` : ''));
  }
  console.log(`  largest |q8 int8 - ORT int8 --exact|: ${q8VsExact.toPrecision(3)}`);
}
main().catch(e => { console.error(`ort_agreement: ${e.message}`); process.exit(1); });
