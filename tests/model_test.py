#!/usr/bin/python3
"""Model-level test: every zoo model through octet and ONNX Runtime on the same input.

Usage: model_test.py BUILD_DIR ZOO_DIR [--only NAME,...] [--time [--passes P] [--iters I]]

ZOO_DIR is what models/export_zoo.py wrote (zoo.json + *.onnx). For each model, a N(0,1) input
with a per-model fixed seed is fed to ONNX Runtime (bench/ort_run.js, CPU EP, all graph
optimizations) and to `BUILD_DIR/tools/octet run`; every output must have the same shape and
dtype and satisfy max|octet - ort| <= 1e-4 * max(1, max|ort|).

--time also times both engines at 1 thread, alternating engine by engine for P passes, and
prints a markdown table. ONNX Runtime reports load time and the median of I in-process runs;
octet has no in-process timer on its command line yet (`octet bench` is a later issue), so its
column is the wall-clock of a whole `octet run` process (load + plan + one run + writing the
output), the best of P passes, and is comparable to ORT's load + run column, not its run column.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ORT_RUN = os.path.join(HERE, '..', 'bench', 'ort_run.js')
REL_TOL = 1e-4


def file_name(tensor_name):
    """The file name both runners give an output: characters outside [A-Za-z0-9._-] become '_'."""
    # Byte-wise over UTF-8, as octet's CLI does.
    return re.sub(rb'[^A-Za-z0-9._-]', b'_', tensor_name.encode()).decode() + '.npy'


def run(cmd, what):
    """Run a command; on failure return its stderr tail as the reason."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        tail = (p.stderr.strip() or p.stdout.strip()).splitlines()[-3:]
        return None, wall, '%s exited with %d: %s' % (what, p.returncode, ' | '.join(tail))
    return p.stdout, wall, None


def make_input(model, path):
    rng = np.random.default_rng(zlib.crc32(model['name'].encode()))
    inp = model['inputs'][0]
    np.save(path, rng.standard_normal(inp['shape']).astype(inp['dtype']))


def compare(model, ort_dir, oct_dir):
    """Return (worst max|diff|, worst max|ref|, failure reason or None) over all outputs."""
    worst_diff, worst_ref = 0.0, 0.0
    for out in model['outputs']:
        fname = file_name(out['name'])
        ref_path, got_path = os.path.join(ort_dir, fname), os.path.join(oct_dir, fname)
        if not os.path.exists(ref_path):
            return worst_diff, worst_ref, 'ONNX Runtime wrote no %s' % fname
        if not os.path.exists(got_path):
            return worst_diff, worst_ref, 'octet wrote no %s' % fname
        ref, got = np.load(ref_path), np.load(got_path)
        if ref.shape != got.shape or ref.dtype != got.dtype:
            return worst_diff, worst_ref, 'output %s: octet %s %s, ONNX Runtime %s %s' % (
                out['name'], got.dtype, got.shape, ref.dtype, ref.shape)
        if not np.all(np.isfinite(got)):
            return worst_diff, worst_ref, 'output %s has %d non-finite values' % (
                out['name'], int(np.size(got) - np.count_nonzero(np.isfinite(got))))
        ref64, got64 = ref.astype(np.float64), got.astype(np.float64)
        diff = float(np.max(np.abs(got64 - ref64))) if ref.size else 0.0
        amax = float(np.max(np.abs(ref64))) if ref.size else 0.0
        worst_ref = max(worst_ref, amax)
        worst_diff = max(worst_diff, diff)
        if not diff <= REL_TOL * max(1.0, amax):
            return worst_diff, worst_ref, 'output %s: max|diff| %.3g > tolerance %.3g' % (
                out['name'], diff, REL_TOL * max(1.0, amax))
    return worst_diff, worst_ref, None


def time_model(model_path, in_path, octet, work, passes, iters):
    ort_runs, ort_loads, oct_walls = [], [], []
    oct_out = os.path.join(work, 'octet_timing')
    for _ in range(passes):
        out, _, err = run(['node', ORT_RUN, model_path, '--input', in_path, '--threads', '1',
                           '--opt', 'all', '--time', str(iters), '--warmup', '1'], 'ort_run.js')
        if err:
            return None, err
        stats = json.loads(out.strip().splitlines()[-1])
        ort_runs.append(stats['median_ms'])
        ort_loads.append(stats['load_ms'])
        _, wall, err = run([octet, 'run', model_path, '-i', in_path, '-o', oct_out,
                            '--threads', '1'], 'octet run')
        if err:
            return None, err
        oct_walls.append(wall * 1e3)
    return (min(ort_loads), min(ort_runs), min(oct_walls)), None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('build_dir')
    ap.add_argument('zoo_dir')
    ap.add_argument('--only', help='comma-separated model names')
    ap.add_argument('--time', action='store_true', help='also time both engines at 1 thread')
    ap.add_argument('--passes', type=int, default=3, help='alternating timing passes (default 3)')
    ap.add_argument('--iters', type=int, default=5, help='timed ORT runs per pass (default 5)')
    args = ap.parse_args()

    octet = os.path.join(args.build_dir, 'tools', 'octet')
    manifest_path = os.path.join(args.zoo_dir, 'zoo.json')
    problems = []
    if not os.access(octet, os.X_OK):
        problems.append('no octet executable at %s' % octet)
    if not os.path.exists(manifest_path):
        problems.append('no zoo manifest at %s (run models/export_zoo.py %s)' % (
            manifest_path, args.zoo_dir))
    if shutil.which('node') is None:
        problems.append('node is not on PATH (ONNX Runtime runs through bench/ort_run.js)')
    elif not os.path.isdir(os.path.join(HERE, '..', 'bench', 'node_modules', 'onnxruntime-node')):
        problems.append('onnxruntime-node is not installed: cd bench && npm install')
    if problems:
        for p in problems:
            print('model_test: ' + p, file=sys.stderr)
        return 1
    with open(manifest_path) as f:
        models = json.load(f)['models']
    if args.only:
        wanted = args.only.split(',')
        unknown = sorted(set(wanted) - {m['name'] for m in models})
        if unknown:
            ap.error('not in the zoo: %s' % ', '.join(unknown))
        models = [m for m in models if m['name'] in wanted]

    passed, failed, timings = 0, 0, []
    work = tempfile.mkdtemp(prefix='octet_model_test_')
    try:
        for model in models:
            name = model['name']
            model_path = os.path.join(args.zoo_dir, model['file'])
            in_path = os.path.join(work, name + '_input.npy')
            ort_dir, oct_dir = os.path.join(work, name + '_ort'), os.path.join(work, name + '_octet')
            make_input(model, in_path)
            _, t_ort, err = run(['node', ORT_RUN, model_path, '--input', in_path,
                                 '--outdir', ort_dir], 'ort_run.js')
            t_oct = 0.0
            if not err:
                _, t_oct, err = run([octet, 'run', model_path, '-i', in_path, '-o', oct_dir],
                                    'octet run')
            diff = ref = 0.0
            if not err:
                diff, ref, err = compare(model, ort_dir, oct_dir)
            status = 'FAIL' if err else 'ok  '
            print('%s %-16s max|diff| %.3e  max|ref| %.3g  (ort %.1f s, octet %.1f s)%s' % (
                status, name, diff, ref, t_ort, t_oct, '  ' + err if err else ''), flush=True)
            if err:
                failed += 1
                continue
            passed += 1
            if args.time:
                t, err = time_model(model_path, in_path, octet, work, args.passes, args.iters)
                if err:
                    print('     %-16s timing failed: %s' % (name, err), flush=True)
                else:
                    timings.append((name,) + t)
            for d in (ort_dir, oct_dir):
                shutil.rmtree(d, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    if timings:
        print('\nTimings at 1 thread, best of %d alternating passes (ms). octet: wall-clock of a '
              'whole `octet run` process (load + one run + output write).\n' % args.passes)
        print('| model | ORT load | ORT run (median of %d) | ORT load + run | octet run, whole process '
              '| octet / (ORT load + run) |' % args.iters)
        print('|---|---:|---:|---:|---:|---:|')
        for name, load, run_ms, oct_ms in timings:
            print('| %s | %.1f | %.1f | %.1f | %.1f | %.2f |' % (
                name, load, run_ms, load + run_ms, oct_ms, oct_ms / (load + run_ms)))
        print()
    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
