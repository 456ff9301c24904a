#!/usr/bin/env node
'use strict';
// The ONNX Runtime side of octet's comparisons: run a model on .npy inputs with the CPU execution
// provider, write every output as DIR/<output name>.npy, and optionally time session.run.

const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');
const { readNpy, writeNpy } = require('./npy');

const USAGE = `usage: node bench/ort_run.js MODEL.onnx --input IN.npy [--input NAME=IN.npy ...]
       [--outdir DIR] [--threads N] [--opt all|extended|basic|disabled] [--time ITERS [--warmup W]] [--rss]

  --input IN.npy       feeds the next graph input not named elsewhere (in graph order)
  --input NAME=IN.npy  feeds the graph input NAME
  --outdir DIR         write each output as DIR/<name>.npy (characters outside [A-Za-z0-9._-] -> '_')
  --threads N          intra-op threads (default 0: ONNX Runtime's choice); inter-op is always 1
  --opt LEVEL          graph optimization level (default all)
  --time ITERS         time ITERS runs after W warm-up runs (default 1); prints JSON
                       {median_ms, min_ms, p90_ms, load_ms} on stdout
  --rss                add the process's peak resident memory to the --time JSON as peak_rss_mb
                       (without --time: print {"peak_rss_mb": ...} after the run)`;

function die(msg) {
  process.stderr.write(`ort_run: ${msg}\n`);
  process.exit(2);
}

function parseCount(flag, s, min) {
  if (!/^\d+$/.test(s || '') || Number(s) < min) die(`${flag} needs an integer >= ${min}, got '${s}'`);
  return Number(s);
}

function parseArgs(argv) {
  const a = { model: null, inputs: [], outdir: null, threads: 0, opt: 'all', time: 0, warmup: 1, rss: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) die(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--input' || arg === '-i') a.inputs.push(value());
    else if (arg === '--outdir' || arg === '-o') a.outdir = value();
    else if (arg === '--threads') a.threads = parseCount(arg, value(), 0);
    else if (arg === '--opt') a.opt = value();
    else if (arg === '--time') a.time = parseCount(arg, value(), 1);
    else if (arg === '--warmup') a.warmup = parseCount(arg, value(), 0);
    else if (arg === '--rss') a.rss = true;
    else if (arg === '-h' || arg === '--help') {
      process.stdout.write(USAGE + '\n');
      process.exit(0);
    } else if (arg.startsWith('-')) die(`unknown option '${arg}'\n${USAGE}`);
    else if (a.model === null) a.model = arg;
    else die(`unexpected argument '${arg}'`);
  }
  if (a.model === null) die(`no model given\n${USAGE}`);
  if (a.inputs.length === 0) die('no --input given');
  if (!['all', 'extended', 'basic', 'disabled'].includes(a.opt)) die(`--opt must be all|extended|basic|disabled, not '${a.opt}'`);
  if (a.outdir === null && a.time === 0) die('nothing to do: give --outdir and/or --time');
  return a;
}

// Named inputs first, then positional ones fill the remaining graph inputs in order.
function buildFeeds(session, specs) {
  const feeds = {};
  const positional = [];
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    if (eq > 0 && session.inputNames.includes(spec.slice(0, eq))) {
      const name = spec.slice(0, eq);
      if (name in feeds) die(`input '${name}' given twice`);
      feeds[name] = spec.slice(eq + 1);
    } else if (eq > 0 && !fs.existsSync(spec)) {
      die(`model has no input '${spec.slice(0, eq)}' (inputs: ${session.inputNames.join(', ')})`);
    } else {
      positional.push(spec);
    }
  }
  const free = session.inputNames.filter((n) => !(n in feeds));
  if (positional.length > free.length) die(`${positional.length} positional inputs but only ${free.length} unassigned graph inputs`);
  positional.forEach((file, k) => { feeds[free[k]] = file; });
  const missing = session.inputNames.filter((n) => !(n in feeds));
  if (missing.length) die(`no data for input(s): ${missing.join(', ')}`);
  const tensors = {};
  for (const [name, file] of Object.entries(feeds)) {
    let arr;
    try {
      arr = readNpy(file);
    } catch (e) {
      die(e.message);
    }
    tensors[name] = new ort.Tensor(arr.type, arr.data, arr.dims);
  }
  return tensors;
}

function percentile(sorted, p) {
  // Nearest-rank percentile over an ascending array.
  const k = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[k];
}

// Peak resident set of the whole process (node + ONNX Runtime) in MB; maxRSS is in KiB.
function peakRssMb() {
  return Math.round((process.resourceUsage().maxRSS / 1024) * 100) / 100;
}

function msSince(t0) {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(args.model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: args.opt,
    intraOpNumThreads: args.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  });
  const loadMs = msSince(t0);
  const feeds = buildFeeds(session, args.inputs);

  let results = null;
  if (args.time === 0) {
    results = await session.run(feeds);
    if (args.rss) process.stdout.write(JSON.stringify({ peak_rss_mb: peakRssMb() }) + '\n');
  } else {
    for (let i = 0; i < args.warmup; i++) results = await session.run(feeds);
    const times = [];
    for (let i = 0; i < args.time; i++) {
      const t = process.hrtime.bigint();
      results = await session.run(feeds);
      times.push(msSince(t));
    }
    times.sort((x, y) => x - y);
    const r3 = (v) => Math.round(v * 1000) / 1000;
    const n = times.length;
    const median = n % 2 ? times[(n - 1) / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
    const report = {
      median_ms: r3(median), min_ms: r3(times[0]), p90_ms: r3(percentile(times, 90)),
      load_ms: r3(loadMs), iters: n, threads: args.threads, opt: args.opt,
    };
    if (args.rss) report.peak_rss_mb = peakRssMb();
    process.stdout.write(JSON.stringify(report) + '\n');
  }

  if (args.outdir !== null) {
    fs.mkdirSync(args.outdir, { recursive: true });
    for (const name of session.outputNames) {
      const t = results[name];
      // Byte-wise over UTF-8, as octet's CLI does, so both write the same file names.
      const safe = Array.from(Buffer.from(name, 'utf8'), (b) => (/[A-Za-z0-9._-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : '_')).join('');
      const file = path.join(args.outdir, safe + '.npy');
      writeNpy(file, t.type, t.dims, t.data);
      if (args.time === 0) process.stdout.write(`${name}: ${t.type} [${t.dims.join(', ')}] -> ${file}\n`);
    }
  }
}

main().catch((e) => {
  process.stderr.write(`ort_run: ${e && e.message ? e.message : e}\n`);
  process.exit(1);
});
