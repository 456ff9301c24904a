#!/usr/bin/python3
"""Model-level int8 test: octet's execution of QDQ models against ONNX Runtime's.

Usage: int8_model_test.py BUILD_DIR ZOO_DIR INT8_DIR [--only NAME,...] [--time [--iters I]]

ZOO_DIR is what models/export_zoo.py wrote; INT8_DIR holds the QDQ versions that
models/quantize_qdq.py writes (`--zoo ZOO_DIR INT8_DIR`). A model missing there, or older than
its fp32 source or the quantizer, is quantized first.

For every model, on a fixed N(0,1) input (8 images for the 2D classifiers, one volume for the
3D U-Nets):
- ONNX Runtime runs the QDQ model twice: with all graph optimizations (its int8 kernels, the
  reference) and with none (the QDQ graph op by op in float: the distance two honest executions
  of the same QDQ model can have).
- octet runs it at every ISA level the CPU has (OCTET_ISA=ref, avx2, avx512, vnni / neon,
  dotprod); its int8 outputs must be byte-identical across levels.
- Acceptance: max|octet - ORT| / max|ORT| must not be clearly above the same measure for ORT's
  op-by-op run: at most 1.5x it plus two output quantization steps. Top-1 agreement with ORT
  (per image, or per voxel for the segmentation models) must not be below the op-by-op run's
  by more than one image (2D) or 1% of voxels (3D).
- `octet inspect --json`: int8 / fp32 node counts, the fp32 nodes with octet's reason; every
  Conv, ConvTranspose, Gemm and MatMul must run in int8 (the U-Nets' ConvTranspose included).
The trained brain tumor classifier (models/brain_tumor_cnn.onnx, quantized on the real calib
split) runs on the whole val split in both engines, fp32 and int8: octet int8 must agree with
ORT int8 on >= 99% of the images; the four accuracies are reported.

--time also times octet int8 (`octet bench`) against ONNX Runtime int8 (bench/ort_run.js --time),
both at 1 thread and batch 1, median of I runs after one warm-up.
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
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ORT_RUN = os.path.join(ROOT, 'bench', 'ort_run.js')
sys.path.insert(0, os.path.join(ROOT, 'models'))
import quantize_qdq  # noqa: E402

CLASSIFIER_BATCH = 8
BRAIN_TUMOR = quantize_qdq.BRAIN_TUMOR
BRAIN_TUMOR_FP32 = os.path.join(ROOT, 'models', BRAIN_TUMOR + '.onnx')
BRAIN_TUMOR_VAL = quantize_qdq.BRAIN_TUMOR_CALIB.replace('_calib.npz', '_val.npz')
BRAIN_TUMOR_MIN_AGREEMENT = 0.99
DIFF_FACTOR, DIFF_LSBS = 1.5, 2.0
GEMM_OPS = ('Conv', 'ConvTranspose', 'Gemm', 'MatMul')  # must all run int8 in a QDQ model


def file_name(tensor_name):
    return re.sub(rb'[^A-Za-z0-9._-]', b'_', tensor_name.encode()).decode() + '.npy'


def run(cmd, what, env=None):
    """Runs cmd; returns (stdout, stderr) or raises RuntimeError with the tail of its messages."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if p.returncode != 0:
        tail = (p.stderr.strip() or p.stdout.strip()).splitlines()[-3:]
        raise RuntimeError('%s exited with %d: %s' % (what, p.returncode, ' | '.join(tail)))
    return p.stdout, p.stderr


def cpu_isa_levels():
    """The OCTET_ISA levels this CPU runs, as kernels/dispatch.c decides them."""
    flags = set()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                key = line.split(':')[0].strip()
                if key in ('flags', 'Features'):
                    flags |= set(line.split(':', 1)[1].split())
    except OSError:
        pass
    levels = ['ref']
    if os.uname().machine in ('aarch64', 'arm64'):
        levels.append('neon')
        if 'asimddp' in flags:
            levels.append('dotprod')
        return levels
    avx2 = {'avx2', 'fma'} <= flags
    avx512 = avx2 and {'avx512f', 'avx512bw', 'avx512vl', 'avx512dq'} <= flags
    if avx2:
        levels.append('avx2')
    if avx512:
        levels.append('avx512')
    if (avx512 and 'avx512_vnni' in flags) or (avx2 and 'avx_vnni' in flags):
        levels.append('vnni')
    return levels


class Engines:
    def __init__(self, octet, work):
        self.octet, self.work = octet, work

    def ort(self, model, inp, tag, opt='all'):
        out = os.path.join(self.work, tag)
        run(['node', ORT_RUN, model, '--input', inp, '--outdir', out, '--opt', opt], 'ort_run.js --opt ' + opt)
        return out

    def octet_run(self, model, inp, tag, batch, isa=None, threads=None):
        out = os.path.join(self.work, tag)
        env = dict(os.environ)
        env.pop('OCTET_ISA', None)
        if isa:
            env['OCTET_ISA'] = isa
        cmd = [self.octet, 'run', model, '-i', inp, '-o', out, '--batch', str(batch)]
        if threads:
            cmd += ['--threads', str(threads)]
        _, err = run(cmd, 'octet run' + (' (OCTET_ISA=%s)' % isa if isa else ''), env)
        m = re.search(r'ran in ([0-9.]+) ms', err)
        return out, float(m.group(1)) if m else None

    def inspect(self, model):
        out, _ = run([self.octet, 'inspect', '--json', model], 'octet inspect')
        return json.loads(out)


def load_outputs(d, names):
    got = {}
    for n in names:
        p = os.path.join(d, file_name(n))
        if not os.path.exists(p):
            raise RuntimeError('no output %s in %s' % (n, d))
        got[n] = np.load(p)
    return got


def output_lsb(int8_path, out_name):
    """The scale of the DequantizeLinear writing graph output out_name (0: not quantized)."""
    m = onnx.load(int8_path, load_external_data=False)
    inits = {t.name: t for t in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == 'DequantizeLinear' and n.output[0] == out_name and n.input[1] in inits:
            return float(np.max(onnx.numpy_helper.to_array(inits[n.input[1]])))
    return 0.0


def precision_summary(plan):
    nodes = plan['nodes']
    int8 = [n for n in nodes if n['precision'] == 'int8']
    fp32 = [n for n in nodes if n['precision'] == 'fp32']
    return len(int8), len(nodes), fp32


def print_fp32(nodes, plan):
    kinds = {}
    for n in plan['nodes']:
        kinds[n['precision']] = kinds.get(n['precision'], 0) + 1
    print('       nodes by precision: ' + ', '.join('%s %d' % kv for kv in sorted(kinds.items())))
    for n in nodes:
        print('       fp32: %-40s %-22s %s' % (n['name'], n['op'], n.get('why_fp32', '')))


def top1(a):
    return np.argmax(a, axis=1)


def stale(dst, sources):
    return not os.path.exists(dst) or any(os.path.getmtime(s) > os.path.getmtime(dst) for s in sources)


def ensure_int8(name, src, int8_dir, calib_npz=None):
    dst = os.path.join(int8_dir, name + '.onnx')
    if stale(dst, [src, quantize_qdq.__file__] + ([calib_npz] if calib_npz else [])):
        os.makedirs(int8_dir, exist_ok=True)
        quantize_qdq.quantize(src, dst, None, 20240601, 'u8', calib_npz,
                              log=lambda s: print('     quantized ' + s, flush=True))
    return dst


def check_isa_identical(eng, model, inp, batch, names, levels, tag):
    """octet's outputs at every level; returns (outputs of the best level, {level: identical}, times)."""
    outs, same = {}, {}
    for isa in levels:
        d, _ = eng.octet_run(model, inp, '%s_octet_%s' % (tag, isa), batch, isa)
        outs[isa] = load_outputs(d, names)
    ref = outs[levels[0]]
    for isa in levels:
        same[isa] = all(outs[isa][n].dtype == ref[n].dtype and outs[isa][n].shape == ref[n].shape
                        and outs[isa][n].tobytes() == ref[n].tobytes() for n in names)
    return outs[levels[-1]], same


def time_pair(eng, model, inp, iters):
    """Median ms at 1 thread and batch 1: octet bench (its own N(0,1) input), ORT on inp."""
    out, _ = run([eng.octet, 'bench', model, '--threads', '1', '--batch', '1', '--warmup', '1',
                  '--iters', str(iters), '--json'], 'octet bench')
    oct_ms = json.loads(out.strip().splitlines()[-1])['median_ms']
    out, _ = run(['node', ORT_RUN, model, '--input', inp, '--threads', '1', '--time', str(iters), '--warmup', '1'],
                 'ort_run.js --time')
    return oct_ms, json.loads(out.strip().splitlines()[-1])['median_ms']


def test_zoo_model(eng, model, int8_path, levels, args, rows, timings):
    name = model['name']
    shape = list(model['inputs'][0]['shape'])
    batch = CLASSIFIER_BATCH if len(shape) == 4 else shape[0]
    shape[0] = batch
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    inp = os.path.join(eng.work, name + '_input.npy')
    np.save(inp, rng.standard_normal(shape).astype(np.float32))
    names = [o['name'] for o in model['outputs']]
    t0 = time.time()
    ref = load_outputs(eng.ort(int8_path, inp, name + '_ort_all', 'all'), names)
    dis = load_outputs(eng.ort(int8_path, inp, name + '_ort_disabled', 'disabled'), names)
    got, same = check_isa_identical(eng, int8_path, inp, batch, names, levels, name)
    plan = eng.inspect(int8_path)
    n_int8, n_total, fp32 = precision_summary(plan)
    problems = []
    worst = {'oct': 0.0, 'dis': 0.0, 'agree_oct': 1.0, 'agree_dis': 1.0}
    for n in names:
        r = ref[n].astype(np.float64)
        amax = float(np.max(np.abs(r))) or 1.0
        if got[n].shape != ref[n].shape or got[n].dtype != ref[n].dtype:
            problems.append('output %s: octet %s %s, ORT %s %s' % (n, got[n].dtype, got[n].shape,
                                                                 ref[n].dtype, ref[n].shape))
            continue
        d_oct = float(np.max(np.abs(got[n] - r))) / amax
        d_dis = float(np.max(np.abs(dis[n] - r))) / amax
        lsb = output_lsb(int8_path, n) / amax
        a_oct = float(np.mean(top1(got[n]) == top1(ref[n])))
        a_dis = float(np.mean(top1(dis[n]) == top1(ref[n])))
        worst = {'oct': max(worst['oct'], d_oct), 'dis': max(worst['dis'], d_dis),
                 'agree_oct': min(worst['agree_oct'], a_oct), 'agree_dis': min(worst['agree_dis'], a_dis)}
        limit = DIFF_FACTOR * d_dis + DIFF_LSBS * lsb
        if not d_oct <= limit:
            problems.append('output %s: octet-vs-ORT %.3g above the limit %.3g (%.1f x ORT op-by-op %.3g + '
                            '%g output steps)' % (n, d_oct, limit, DIFF_FACTOR, d_dis, DIFF_LSBS))
        samples = top1(ref[n]).size
        slack = 1.0 / samples if len(shape) == 4 else 0.01
        if a_oct < a_dis - slack - 1e-12:
            problems.append('output %s: top-1 agreement %.4f below ORT op-by-op %.4f' % (n, a_oct, a_dis))
    bad_isa = [isa for isa, ok in same.items() if not ok]
    if bad_isa:
        problems.append('octet output differs from OCTET_ISA=ref at: %s' % ', '.join(bad_isa))
    fp32_gemm = [n['name'] for n in fp32 if n['op'] in GEMM_OPS]
    if fp32_gemm:
        problems.append('%d Conv/ConvTranspose/Gemm/MatMul in fp32: %s' % (len(fp32_gemm), ', '.join(fp32_gemm[:3])))
    if name.startswith('unet3d') and not any(n['op'] == 'QLinearConvTranspose' and n['precision'] == 'int8'
                                             for n in plan['nodes']):
        problems.append('no ConvTranspose runs in int8')
    status = 'FAIL' if problems else 'ok  '
    print('%s %-16s int8 %3d/%-3d  octet-vs-ORT %.3e  ORT-disabled-vs-ORT %.3e  top-1 %.4f (op-by-op %.4f)  '
          'ISA identical %s [%s]  (%.1f s)' % (
              status, name, n_int8, n_total, worst['oct'], worst['dis'], worst['agree_oct'], worst['agree_dis'],
              'yes' if not bad_isa else 'NO', ','.join(levels), time.time() - t0), flush=True)
    print_fp32(fp32, plan)
    for p in problems:
        print('       ' + p)
    rows.append((name, n_int8, n_total, worst['oct'], worst['dis'], worst['agree_oct'], not bad_isa))
    if args.time and not problems:
        one = os.path.join(eng.work, name + '_one.npy')
        np.save(one, np.load(inp)[:1])
        timings.append((name,) + time_pair(eng, int8_path, one, args.iters))
    return not problems


def test_brain_tumor(eng, int8_dir, levels, args, rows, timings):
    """Real data: the trained classifier on the whole val split, fp32 and int8, both engines."""
    int8_path = ensure_int8(BRAIN_TUMOR, BRAIN_TUMOR_FP32, int8_dir, quantize_qdq.BRAIN_TUMOR_CALIB)
    with np.load(BRAIN_TUMOR_VAL) as d:
        x, y = d['x'], d['y']
    inp = os.path.join(eng.work, BRAIN_TUMOR + '_val.npy')
    np.save(inp, x[:, None].astype(np.float32))
    n = len(y)
    name = onnx.load(BRAIN_TUMOR_FP32, load_external_data=False).graph.output[0].name
    t0 = time.time()
    ort32 = load_outputs(eng.ort(BRAIN_TUMOR_FP32, inp, 'bt_ort32'), [name])[name]
    oct32 = load_outputs(eng.octet_run(BRAIN_TUMOR_FP32, inp, 'bt_oct32', n)[0], [name])[name]
    ort8 = load_outputs(eng.ort(int8_path, inp, 'bt_ort8'), [name])[name]
    dis8 = load_outputs(eng.ort(int8_path, inp, 'bt_dis8', 'disabled'), [name])[name]
    oct8s, same = check_isa_identical(eng, int8_path, inp, n, [name], levels, 'bt')
    oct8 = oct8s[name]
    plan = eng.inspect(int8_path)
    n_int8, n_total, fp32 = precision_summary(plan)
    acc = {k: float(np.mean(top1(v) == y)) for k, v in
           (('ORT fp32', ort32), ('octet fp32', oct32), ('ORT int8', ort8), ('octet int8', oct8))}
    agree = float(np.mean(top1(oct8) == top1(ort8)))
    agree_dis = float(np.mean(top1(dis8) == top1(ort8)))
    amax = float(np.max(np.abs(ort8))) or 1.0
    d_oct = float(np.max(np.abs(oct8.astype(np.float64) - ort8))) / amax
    d_dis = float(np.max(np.abs(dis8.astype(np.float64) - ort8))) / amax
    problems = []
    if agree < BRAIN_TUMOR_MIN_AGREEMENT:
        problems.append('top-1 agreement octet int8 vs ORT int8 %.4f below %.2f' % (agree, BRAIN_TUMOR_MIN_AGREEMENT))
    bad_isa = [isa for isa, ok in same.items() if not ok]
    if bad_isa:
        problems.append('octet output differs from OCTET_ISA=ref at: %s' % ', '.join(bad_isa))
    status = 'FAIL' if problems else 'ok  '
    print('%s %-16s int8 %3d/%-3d  octet-vs-ORT %.3e  ORT-disabled-vs-ORT %.3e  top-1 %.4f (op-by-op %.4f) '
          'over %d val images  ISA identical %s  (%.1f s)' % (
              status, BRAIN_TUMOR, n_int8, n_total, d_oct, d_dis, agree, agree_dis, n,
              'yes' if not bad_isa else 'NO', time.time() - t0), flush=True)
    print('       accuracy on val: ' + ', '.join('%s %.4f' % kv for kv in acc.items()))
    print_fp32(fp32, plan)
    for p in problems:
        print('       ' + p)
    rows.append((BRAIN_TUMOR, n_int8, n_total, d_oct, d_dis, agree, not bad_isa))
    if args.time and not problems:
        one = os.path.join(eng.work, BRAIN_TUMOR + '_one.npy')
        np.save(one, x[:1, None].astype(np.float32))
        timings.append((BRAIN_TUMOR,) + time_pair(eng, int8_path, one, args.iters))
    return not problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('build_dir')
    ap.add_argument('zoo_dir')
    ap.add_argument('int8_dir')
    ap.add_argument('--only', help='comma-separated model names (brain_tumor_cnn included)')
    ap.add_argument('--time', action='store_true', help='time octet int8 and ORT int8 at 1 thread')
    ap.add_argument('--iters', type=int, default=10, help='timed runs per engine (default 10)')
    args = ap.parse_args()

    octet = os.path.join(args.build_dir, 'tools', 'octet')
    manifest = os.path.join(args.zoo_dir, 'zoo.json')
    problems = []
    if not os.access(octet, os.X_OK):
        problems.append('no octet executable at %s' % octet)
    if not os.path.exists(manifest):
        problems.append('no zoo manifest at %s (run models/export_zoo.py %s)' % (manifest, args.zoo_dir))
    if shutil.which('node') is None:
        problems.append('node is not on PATH (ONNX Runtime runs through bench/ort_run.js)')
    elif not os.path.isdir(os.path.join(ROOT, 'bench', 'node_modules', 'onnxruntime-node')):
        problems.append('onnxruntime-node is not installed: cd bench && npm install')
    if problems:
        for p in problems:
            print('int8_model_test: ' + p, file=sys.stderr)
        return 1
    with open(manifest) as f:
        models = json.load(f)['models']
    with_bt = os.path.exists(BRAIN_TUMOR_FP32) and os.path.exists(BRAIN_TUMOR_VAL)
    if args.only:
        wanted = args.only.split(',')
        unknown = sorted(set(wanted) - {m['name'] for m in models} - ({BRAIN_TUMOR} if with_bt else set()))
        if unknown:
            ap.error('not in the zoo: %s' % ', '.join(unknown))
        models = [m for m in models if m['name'] in wanted]
        with_bt = with_bt and BRAIN_TUMOR in wanted
    levels = cpu_isa_levels()
    print('ISA levels checked: %s' % ', '.join(levels), flush=True)

    passed = failed = 0
    rows, timings = [], []
    work = tempfile.mkdtemp(prefix='octet_int8_test_')
    try:
        eng = Engines(octet, work)
        jobs = [(m['name'], lambda m=m: test_zoo_model(
            eng, m, ensure_int8(m['name'], os.path.join(args.zoo_dir, m['file']), args.int8_dir),
            levels, args, rows, timings)) for m in models]
        if with_bt:
            jobs.append((BRAIN_TUMOR, lambda: test_brain_tumor(eng, args.int8_dir, levels, args, rows, timings)))
        for name, job in jobs:
            try:
                ok = job()
            except (RuntimeError, quantize_qdq.QuantizeError, OSError) as e:
                print('FAIL %-16s %s' % (name, e), flush=True)
                ok = False
            passed += ok
            failed += not ok
            for d in os.listdir(work):
                p = os.path.join(work, d)
                if os.path.isdir(p):
                    shutil.rmtree(p, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    if rows:
        print('\n| model | int8 nodes / total | octet-vs-ORT max diff | ORT-disabled-vs-ORT max diff '
              '| top-1 agreement | ISA identical |')
        print('|---|---:|---:|---:|---:|:---:|')
        for name, i8, tot, d_oct, d_dis, agree, same in rows:
            print('| %s | %d / %d | %.3e | %.3e | %.4f | %s |' % (name, i8, tot, d_oct, d_dis, agree,
                                                                   'yes' if same else 'no'))
        print('\n(max diffs are relative: max|a - ORT| / max|ORT|, ORT = ONNX Runtime int8 with all '
              'optimizations)')
    if timings:
        print('\nint8 at 1 thread, batch 1, median of %d runs after 1 warm-up (ms)\n' % args.iters)
        print('| model | octet int8 | ORT int8 | octet / ORT |')
        print('|---|---:|---:|---:|')
        for name, o, r in timings:
            print('| %s | %.2f | %.2f | %.2f |' % (name, o, r, o / r))
    print()
    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
