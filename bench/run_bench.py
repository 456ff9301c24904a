#!/usr/bin/python3
"""octet against ONNX Runtime on the model zoo, side by side: results.json, results.md, chart.svg.

Usage: run_bench.py [--models DIR] [--int8 DIR] [--threads 1,2] [--passes 3] [--out bench/results]
                    [--octet BUILD/tools/octet] [--only NAME,...] [--quick]
       run_bench.py --report RESULTS.json [--out DIR]   (results.md and chart.svg again)

--models is what models/export_zoo.py wrote (zoo.json + *.onnx); --int8 a directory with QDQ
versions under the same file names (models/quantize_qdq.py; default DIR_int8 next to --models
when it exists, "none" to skip). Every (model, precision, threads) is measured in separate
processes: `octet bench --json` and `node bench/ort_run.js --time --rss` (CPU EP,
graphOptimizationLevel all, intra-op threads = threads, inter-op 1, sequential), on N(0,1)
inputs. Each pass runs every configuration once, the engine order alternating from pass to pass
and from configuration to configuration, so that drift of a shared machine hits both engines
alike. Headline: the best median of the passes per engine, as in ../shared/ANCHORS.md. 2D models
take 5 warm-up + 30 timed runs, 3D U-Nets (5-D inputs) 2 + 6; --quick skips the 3D models.
Load time is the best of the passes, peak RSS the largest (whole process: node + ORT for ORT).
results.json is rewritten after every pass; --report makes the table and chart from it (also
from an interrupted run).
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import chart  # noqa: E402  (bench/chart.py)

ORT_RUN = os.path.join(HERE, 'ort_run.js')
RUN_TIMEOUT_S = 1800


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--models', default=os.path.join(ROOT, 'models', 'zoo'), help='fp32 zoo directory (zoo.json)')
    ap.add_argument('--int8', default=None, help='QDQ zoo directory (default: MODELS_int8 if present; none: skip)')
    ap.add_argument('--threads', default='1,2', help='comma-separated thread counts (default 1,2)')
    ap.add_argument('--passes', type=int, default=3, help='passes over all configurations (default 3)')
    ap.add_argument('--out', default=os.path.join(HERE, 'results'), help='output directory')
    ap.add_argument('--octet', default=os.path.join(ROOT, 'build', 'tools', 'octet'), help='octet binary')
    ap.add_argument('--only', default='', help='comma-separated model names')
    ap.add_argument('--quick', action='store_true', help='skip the 3D U-Nets')
    ap.add_argument('--report', metavar='RESULTS_JSON', help='only write results.md and chart.svg from RESULTS_JSON')
    a = ap.parse_args()
    if a.report:
        return a
    try:
        a.threads = [int(t) for t in a.threads.split(',') if t.strip()]
    except ValueError:
        ap.error('--threads takes comma-separated integers, got %r' % a.threads)
    if not a.threads or min(a.threads) < 1:
        ap.error('--threads needs thread counts >= 1')
    if a.passes < 1:
        ap.error('--passes must be >= 1')
    if not os.access(a.octet, os.X_OK):
        ap.error('no octet binary at %s (build it, or give --octet)' % a.octet)
    if not os.path.isfile(os.path.join(a.models, 'zoo.json')):
        ap.error('%s has no zoo.json (write the zoo with models/export_zoo.py)' % a.models)
    if a.int8 is None:
        guess = a.models.rstrip('/') + '_int8'
        a.int8 = guess if os.path.isdir(guess) else None
    elif a.int8 == 'none':
        a.int8 = None
    elif not os.path.isdir(a.int8):
        ap.error('--int8 %s is not a directory' % a.int8)
    return a


def is_3d(model):
    return len(model['inputs'][0]['shape']) == 5


def run_json(cmd):
    """Runs cmd; returns (its last stdout line as JSON, None) or (None, reason)."""
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None, 'timed out after %d s' % RUN_TIMEOUT_S
    except OSError as e:
        return None, 'cannot run %s: %s' % (cmd[0], e)
    if p.returncode != 0:
        tail = (p.stderr.strip() or p.stdout.strip()).splitlines()[-2:]
        return None, 'exit %d: %s' % (p.returncode, ' | '.join(tail))
    lines = p.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1]), None
    except (IndexError, ValueError):
        return None, 'no JSON on stdout: %r' % p.stdout[-200:]


def run_octet(a, cfg):
    cmd = [a.octet, 'bench', cfg['file'], '--threads', str(cfg['threads']), '--warmup', str(cfg['warmup']),
           '--iters', str(cfg['iters']), '--json']
    return run_json(cmd)


def run_ort(cfg, input_npy):
    cmd = ['node', ORT_RUN, cfg['file'], '--input', input_npy, '--threads', str(cfg['threads']), '--opt', 'all',
           '--time', str(cfg['iters']), '--warmup', str(cfg['warmup']), '--rss']
    return run_json(cmd)


def configurations(a, zoo):
    names = {n for n in a.only.split(',') if n}
    cfgs = []
    for m in zoo['models']:
        if names and m['name'] not in names:
            continue
        if a.quick and is_3d(m):
            continue
        if len(m['inputs']) != 1 or m['inputs'][0]['dtype'] != 'float32':
            print('skipping %s: not one float32 input' % m['name'], file=sys.stderr)
            continue
        dirs = [('fp32', a.models)] + ([('int8', a.int8)] if a.int8 else [])
        for prec, d in dirs:
            f = os.path.join(d, m['file'])
            if not os.path.isfile(f):
                continue
            for t in a.threads:
                warmup, iters = (2, 6) if is_3d(m) else (5, 30)
                cfgs.append({'model': m['name'], 'precision': prec, 'threads': t, 'file': f,
                             'input_shape': m['inputs'][0]['shape'], 'warmup': warmup, 'iters': iters})
    return cfgs


def summarize(runs):
    """Best median of the passes, with that pass's min/p90; best load; largest peak RSS."""
    ok = [r for r in runs if r]
    if not ok:
        return None
    best = min(ok, key=lambda r: r['median_ms'])
    rss = [r['peak_rss_mb'] for r in ok if r.get('peak_rss_mb')]
    return {'median_ms': best['median_ms'], 'min_ms': best['min_ms'], 'p90_ms': best['p90_ms'],
            'load_ms': min(r['load_ms'] for r in ok), 'peak_rss_mb': max(rss) if rss else None,
            'medians': [r['median_ms'] for r in ok]}


def machine_info():
    cpu = ''
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    ort_version = ''
    try:
        with open(os.path.join(HERE, 'node_modules', 'onnxruntime-node', 'package.json')) as f:
            ort_version = json.load(f)['version']
    except (OSError, ValueError, KeyError):
        pass
    return {'cpu': cpu, 'cpus': os.cpu_count(), 'onnxruntime': ort_version}


def cross_core_factor(octet_binary):
    """bench/xfer's cross-core factor (a core reading what the other wrote vs its own), or None."""
    xfer = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(octet_binary))), 'bench', 'xfer')
    if not os.access(xfer, os.X_OK):
        return None
    try:
        out = subprocess.run([xfer, '512', '300'], capture_output=True, text=True, timeout=60).stdout
        return float(out.split('cross-core factor ')[1].split()[0])
    except (OSError, subprocess.SubprocessError, IndexError, ValueError):
        return None


def build_rows(cfgs, measured):
    rows = []
    for i, c in enumerate(cfgs):
        row = {k: c[k] for k in ('model', 'precision', 'threads', 'input_shape', 'warmup', 'iters')}
        for engine in ('octet', 'ort'):
            row[engine] = summarize([m['result'] for m in measured[i][engine]])
            errors = [m['error'] for m in measured[i][engine] if m['error']]
            if errors:
                row[engine + '_errors'] = errors
        o, r = row['octet'], row['ort']
        row['ratio_ort_over_octet'] = round(r['median_ms'] / o['median_ms'], 3) if o and r else None
        rows.append(row)
    return rows


def cell(side, key, fmt):
    return fmt % side[key] if side and side.get(key) is not None else 'n/a'


def passes_done(results):
    """Passes that ran (fewer than asked when the run was interrupted)."""
    if 'passes_done' in results:
        return results['passes_done']
    runs = [len(r[e]['medians']) for r in results['rows'] for e in ('octet', 'ort') if r.get(e)]
    return max(runs) if runs else 0


def fmt_load(v):
    return '%.2f' % v if isinstance(v, (int, float)) else 'n/a'


def write_markdown(path, results):
    rows = results['rows']
    info = results['machine']
    lines = ['# octet vs ONNX Runtime', '',
             '%s; %s CPUs (%s); ONNX Runtime %s (CPU EP, graphOptimizationLevel all, inter-op 1, sequential); '
             'octet %s.' % (results['date'], info['cpus'], info['cpu'], info['onnxruntime'], results['octet_version']),
             'Median latency per run, best of %d pass(es) alternating the engines; 2D models 5 warm-up + 30 timed runs, '
             '3D U-Nets 2 + 6. Inputs N(0,1). Peak RSS: whole process (ONNX Runtime: node + ORT). Load: file to a '
             'ready session.' % passes_done(results),
             'Load average (1 min) during the run: %s at the start, %s at the end, mean %s over the '
             'measurements.' % tuple(fmt_load(results.get(k)) for k in ('load_start', 'load_end', 'load_mean')),
             'Cross-core factor (bench/xfer: a core reading what the other just wrote, against its own; it moves '
             '2-thread results): %s at the start, %s at the end.' % tuple(
                 fmt_load(results.get(k)) for k in ('xfer_start', 'xfer_end')), '',
             '| model | precision | threads | octet ms | ORT ms | ratio ORT/octet | octet RSS MB | ORT RSS MB '
             '| octet load ms | ORT load ms |',
             '|---|---|---|---:|---:|---:|---:|---:|---:|---:|']
    for r in rows:
        o, t = r['octet'], r['ort']
        ratio = '%.2f' % r['ratio_ort_over_octet'] if r['ratio_ort_over_octet'] else 'n/a'
        lines.append('| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s |' % (
            r['model'], r['precision'], r['threads'], cell(o, 'median_ms', '%.2f'), cell(t, 'median_ms', '%.2f'),
            ratio, cell(o, 'peak_rss_mb', '%.0f'), cell(t, 'peak_rss_mb', '%.0f'), cell(o, 'load_ms', '%.0f'),
            cell(t, 'load_ms', '%.0f')))
    # geometric mean of the ratios per precision and thread count
    groups = {}
    for r in rows:
        if r['ratio_ort_over_octet']:
            groups.setdefault((r['precision'], r['threads']), []).append(r['ratio_ort_over_octet'])
    if groups:
        lines += ['', 'Geometric mean of ORT/octet (above 1: octet is faster): ' + '; '.join(
            '%s %dt %.2f (%d models)' % (p, t, float(np.exp(np.mean(np.log(v)))), len(v))
            for (p, t), v in sorted(groups.items()))]
    errs = [(r['model'], r['precision'], r['threads'], e, msg) for r in rows for e in ('octet', 'ort')
            for msg in r.get(e + '_errors', [])]
    if errs:
        lines += ['', 'Failed runs:', '']
        lines += ['- %s %s %dt %s: %s' % e for e in errs]
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


def octet_version(binary):
    try:
        out = subprocess.run([binary, '--version'], stdout=subprocess.PIPE, text=True, timeout=60).stdout.strip()
        return out[len('octet '):] if out.startswith('octet ') else out
    except (OSError, subprocess.SubprocessError):
        return ''


def main():
    a = parse_args()
    if a.report:
        with open(a.report) as f:
            results = json.load(f)
        os.makedirs(a.out, exist_ok=True)
        return report(a.out, results)
    with open(os.path.join(a.models, 'zoo.json')) as f:
        zoo = json.load(f)
    cfgs = configurations(a, zoo)
    if not cfgs:
        print('nothing to measure', file=sys.stderr)
        return 1
    os.makedirs(a.out, exist_ok=True)
    measured = [{'octet': [], 'ort': []} for _ in cfgs]
    loads = []
    results = {'date': datetime.datetime.now().strftime('%Y-%m-%d %H:%M'), 'machine': machine_info(),
               'octet_version': octet_version(a.octet), 'passes': a.passes, 'threads': a.threads,
               'models_dir': os.path.abspath(a.models), 'int8_dir': os.path.abspath(a.int8) if a.int8 else None,
               'load_start': os.getloadavg()[0], 'xfer_start': cross_core_factor(a.octet)}
    t_start = time.time()
    with tempfile.TemporaryDirectory(prefix='octet-bench-') as tmp:
        inputs = {}
        for c in cfgs:
            if c['model'] not in inputs:
                path = os.path.join(tmp, c['model'] + '.npy')
                rng = np.random.default_rng(zlib.crc32(c['model'].encode()))
                np.save(path, rng.standard_normal(c['input_shape']).astype(np.float32))
                inputs[c['model']] = path
        step = 0
        for p in range(a.passes):
            for i, c in enumerate(cfgs):
                # alternate which engine goes first, across passes and configurations
                order = ('octet', 'ort') if (p + i) % 2 == 0 else ('ort', 'octet')
                for engine in order:
                    loads.append(os.getloadavg()[0])
                    res, error = run_octet(a, c) if engine == 'octet' else run_ort(c, inputs[c['model']])
                    measured[i][engine].append({'result': res, 'error': error})
                    step += 1
                    print('[%3d/%d %5.0fs] pass %d %-16s %s %dt %-5s %s' % (
                        step, 2 * a.passes * len(cfgs), time.time() - t_start, p + 1, c['model'], c['precision'],
                        c['threads'], engine, '%.2f ms' % res['median_ms'] if res else 'FAILED: ' + error),
                        file=sys.stderr, flush=True)
            # results so far, so that an interrupted run leaves something behind
            results['passes_done'] = p + 1
            results['load_end'] = os.getloadavg()[0]
            results['load_mean'] = float(np.mean(loads))
            results['xfer_end'] = cross_core_factor(a.octet)
            results['seconds'] = round(time.time() - t_start, 1)
            results['rows'] = build_rows(cfgs, measured)
            with open(os.path.join(a.out, 'results.json'), 'w') as f:
                json.dump(results, f, indent=1)
    return report(a.out, results)


def report(out, results):
    write_markdown(os.path.join(out, 'results.md'), results)
    try:
        chart.write_chart(results, os.path.join(out, 'chart.svg'))
    except ValueError as e:
        print('no chart: %s' % e, file=sys.stderr)
    with open(os.path.join(out, 'results.md')) as f:
        sys.stdout.write(f.read())
    print('wrote %s/results.{json,md} and chart.svg after %.0f s of measuring' % (out, results.get('seconds', 0)),
          file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
