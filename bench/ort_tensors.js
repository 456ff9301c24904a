#!/usr/bin/env node
'use strict';
// Calibration statistics from ONNX Runtime: runs a model (whose graph outputs the caller has
// extended with the intermediate tensors it wants to observe) on a series of .npy inputs and
// prints, for every output, the minimum and maximum over all runs as one JSON object
// {"name": [min, max], ...}. Reducing here keeps the tensors out of files: the 3D U-Net's
// activations at 96^3 are gigabytes per sample.

const ort = require('onnxruntime-node');
const { readNpy } = require('./npy');

const USAGE = `usage: node bench/ort_tensors.js MODEL.onnx IN.npy [IN.npy ...] [--threads N]

  Each IN.npy feeds the model's only input for one run (a batch of any size); the model must
  have exactly one input. Prints {"<output>": [min, max], ...} over all runs on stdout.
  Non-float outputs are skipped; a NaN anywhere is an error.`;

function die(msg, code = 2) {
  process.stderr.write(`ort_tensors: ${msg}\n`);
  process.exit(code);
}

function parseArgs(argv) {
  const a = { model: null, inputs: [], threads: 0 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--threads') {
      const v = argv[++i];
      if (!/^\d+$/.test(v || '')) die(`--threads needs a non-negative integer, got '${v}'`);
      a.threads = Number(v);
    } else if (arg === '-h' || arg === '--help') {
      process.stdout.write(USAGE + '\n');
      process.exit(0);
    } else if (arg.startsWith('-')) die(`unknown option '${arg}'\n${USAGE}`);
    else if (a.model === null) a.model = arg;
    else a.inputs.push(arg);
  }
  if (a.model === null || a.inputs.length === 0) die(USAGE);
  return a;
}

function minMax(data) {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
    if (v !== v) return null; // NaN
  }
  return [lo, hi];
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const session = await ort.InferenceSession.create(args.model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: args.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  });
  if (session.inputNames.length !== 1) die(`the model has ${session.inputNames.length} inputs, this tool feeds one`);
  const stats = {};
  for (const file of args.inputs) {
    let arr;
    try {
      arr = readNpy(file);
    } catch (e) {
      die(e.message);
    }
    const feeds = { [session.inputNames[0]]: new ort.Tensor(arr.type, arr.data, arr.dims) };
    const results = await session.run(feeds);
    for (const name of session.outputNames) {
      const t = results[name];
      if (t.type !== 'float32' && t.type !== 'float64') continue;
      if (t.data.length === 0) continue;
      const mm = minMax(t.data);
      if (mm === null) die(`output '${name}' has NaN on input ${file}`, 1);
      const s = stats[name];
      stats[name] = s ? [Math.min(s[0], mm[0]), Math.max(s[1], mm[1])] : mm;
    }
  }
  process.stdout.write(JSON.stringify(stats) + '\n');
}

main().catch((e) => die(e && e.message ? e.message : String(e), 1));
