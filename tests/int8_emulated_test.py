#!/usr/bin/python3
"""int8 identity across architectures: the aarch64 build under qemu-user against the native ref.

Usage: int8_emulated_test.py NATIVE_OCTET EMULATED_OCTET ZOO_DIR INT8_DIR WORK_DIR -- WRAPPER...

Integer math is exact and the requantization arithmetic is specified to the bit
(kernels/ref/quant_kernels.h), so every int8 model must give byte-identical outputs on every
kernel set of every architecture. For each int8 zoo model (quantized into INT8_DIR by
models/quantize_qdq.py when missing, as tests/int8_model_test.py does) and the trained brain-tumor
classifier, one fixed N(0,1) input (batch 1) runs
- natively with OCTET_ISA=ref (the reference),
- emulated with the NEON kernels (QEMU_CPU=cortex-a53: an ARMv8.0 core without dot-product, so the
  dispatch itself picks NEON), and with the dot-product kernels (qemu's default CPU `max`).
Emulation is slow, so the 3-D U-Nets run as 32^3 variants of the zoo's networks (the same ops:
int8 Conv3d, ConvTranspose3d, InstanceNormalization, MaxPool3d, Concat), exported here.
Ends with "N passed, N failed" over the models.
"""
import os
import subprocess
import sys
import time
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, 'models'))
sys.path.insert(0, HERE)
import export_zoo  # noqa: E402
import int8_model_test as i8  # noqa: E402
import quantize_qdq  # noqa: E402

CLASSIFIERS = ('resnet18', 'resnet18_bn', 'resnet50', 'mobilenet_v2', 'efficientnet_b0', 'efficientnet_b3')
SMALL_UNETS = {'unet3d_bn_32': 'unet3d_bn', 'unet3d_in_32': 'unet3d_in'}
SMALL_SIDE = 32
# (label, OCTET_ISA, QEMU_CPU): the emulated runs
EMULATED = (('neon', None, 'cortex-a53'), ('dotprod', None, 'max'))


def run_octet(cmd, model, inp, out, isa=None, qemu_cpu=None):
    env = dict(os.environ)
    env.pop('OCTET_ISA', None)
    env.pop('QEMU_CPU', None)
    if isa:
        env['OCTET_ISA'] = isa
    if qemu_cpu:
        env['QEMU_CPU'] = qemu_cpu
    p = subprocess.run(cmd + ['run', model, '-i', inp, '-o', out, '--threads', '2'], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError('octet run exited with %d: %s' % (p.returncode, p.stderr.strip()[-300:]))
    return sorted(os.listdir(out))


def kernel_set(cmd, qemu_cpu):
    """The kernel set the dispatch picks on the emulated CPU (octet --version names it)."""
    env = dict(os.environ, QEMU_CPU=qemu_cpu)
    env.pop('OCTET_ISA', None)
    p = subprocess.run(cmd + ['--version'], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return p.stdout.strip().rpartition('kernels: ')[2].rstrip(')')


def export_small_unets(zoo_dir, work):
    """32^3 versions of the zoo's U-Nets, exported beside the work files (cached)."""
    out = {}
    for small, big in SMALL_UNETS.items():
        path = os.path.join(work, small + '.onnx')
        if not os.path.exists(path):
            ctor, shape, keep_bn = export_zoo.ZOO[big]
            export_zoo.ZOO[small] = (ctor, tuple(shape[:2]) + (SMALL_SIDE,) * 3, keep_bn)
            export_zoo.export_one(small, work)
        out[small] = path
    return out


def main():
    if '--' not in sys.argv or sys.argv.index('--') != 6:
        sys.exit(__doc__.split('\n\n')[1])
    native, emulated, zoo_dir, int8_dir, work = sys.argv[1:6]
    wrapper = sys.argv[7:]
    os.makedirs(work, exist_ok=True)
    for label, _, cpu in EMULATED:
        got = kernel_set(wrapper + [emulated], cpu)
        if got != label:
            print('FAIL on QEMU_CPU=%s the dispatch picks %r, expected %r' % (cpu, got, label))
            print('0 passed, 1 failed')
            return 1
    models = [(n, os.path.join(zoo_dir, n + '.onnx'), None) for n in CLASSIFIERS]
    models += [(n, p, None) for n, p in export_small_unets(zoo_dir, work).items()]
    models.append((quantize_qdq.BRAIN_TUMOR, i8.BRAIN_TUMOR_FP32, quantize_qdq.BRAIN_TUMOR_CALIB))
    passed = failed = 0
    for name, src, calib in models:
        t0 = time.time()
        try:
            int8 = i8.ensure_int8(name, src, int8_dir, calib)
            shape = [1] + [d.dim_value for d in i8.onnx.load(int8, load_external_data=False)
                           .graph.input[0].type.tensor_type.shape.dim[1:]]
            inp = os.path.join(work, name + '_input.npy')
            np.save(inp, np.random.default_rng(zlib.crc32(name.encode())).standard_normal(shape).astype(np.float32))
            ref_dir = os.path.join(work, name + '_native_ref')
            files = run_octet([native], int8, inp, ref_dir, isa='ref')
            bad = []
            for label, isa, cpu in EMULATED:
                d = os.path.join(work, '%s_emulated_%s' % (name, label))
                got = run_octet(wrapper + [emulated], int8, inp, d, isa, cpu)
                same = got == files and all(
                    open(os.path.join(d, f), 'rb').read() == open(os.path.join(ref_dir, f), 'rb').read()
                    for f in files)
                if not same:
                    bad.append(label)
            ok = not bad
            detail = 'identical: native ref = aarch64 neon = aarch64 dotprod' if ok else \
                'DIFFERS from the native ref at: ' + ', '.join(bad)
        except (RuntimeError, OSError, ValueError) as e:
            ok, detail = False, str(e)
        print('%s %-18s %s  (%.0f s)' % ('ok  ' if ok else 'FAIL', name, detail, time.time() - t0), flush=True)
        passed += ok
        failed += not ok
    print('%d passed, %d failed' % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
