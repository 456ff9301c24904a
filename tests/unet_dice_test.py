#!/usr/bin/python3
"""`octet quantize` + `octet validate` on the 3-D U-Net (segmentation: per-class and mean Dice).

Usage: unet_dice_test.py BUILD_DIR ZOO_DIR [--patches N] [--model unet3d_bn]

The zoo U-Net has random weights, so there is no real label volume: the label is the fp32
model's own argmax on synthetic N(0,1) patches (the distribution its BatchNorm statistics were
collected on), which makes the fp32 Dice exactly 1 and the int8 Dice a measure of how many
voxels int8 moves to another class. Two patches calibrate, N others (default 2) are validated,
all 1x96^3. Checks: the report is a segmentation report with one Dice per class, fp32 Dice is 1
for every class, int8 Dice values are in [0, 1], and the verdict and exit status follow the
0.01 Dice gate. Prints the per-class table.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np


def run(cmd, ok=(0,)):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode not in ok:
        sys.exit('FAIL: %s exited %d\n%s%s' % (' '.join(cmd), p.returncode, p.stdout, p.stderr))
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('build')
    ap.add_argument('zoo')
    ap.add_argument('--patches', type=int, default=2)
    ap.add_argument('--model', default='unet3d_bn')
    args = ap.parse_args()
    octet = os.path.join(args.build, 'tools', 'octet')
    model = os.path.join(args.zoo, args.model + '.onnx')
    if not os.path.exists(model):
        sys.exit('FAIL: %s is missing (models/export_zoo.py writes it)' % model)

    rng = np.random.default_rng(20261122)
    n_val = args.patches
    x = rng.standard_normal((2 + n_val, 1, 96, 96, 96), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        calib = os.path.join(tmp, 'calib.npz')
        val = os.path.join(tmp, 'val.npz')
        int8 = os.path.join(tmp, 'int8.onnx')
        np.savez(calib, x=x[:2])
        # Labels: the fp32 model's argmax over the class axis, one patch at a time.
        labels = []
        for i in range(n_val):
            np.save(os.path.join(tmp, 'x.npy'), x[2 + i:3 + i])
            out = os.path.join(tmp, 'out%d' % i)
            run([octet, 'run', model, '-i', os.path.join(tmp, 'x.npy'), '-o', out])
            (name,) = os.listdir(out)
            scores = np.load(os.path.join(out, name))
            labels.append(scores.argmax(1).astype(np.int64))
        y = np.concatenate(labels)
        np.savez(val, x=x[2:], y=y)
        k = scores.shape[1]
        present = np.unique(y)
        print('%s: %d classes, %d of them in the synthetic labels of %d patches' % (args.model, k, len(present), n_val))

        run([octet, 'quantize', model, '--calib', calib, '-o', int8])
        p = run([octet, 'validate', model, int8, '--data', val, '--json', '--batch', '1'], ok=(0, 3))
        r = json.loads(p.stdout)
        fails = []
        if r['task'] != 'segmentation' or r['classes'] != k:
            fails.append('not a %d-class segmentation report: %s %s' % (k, r['task'], r['classes']))
        fp, q = r['fp32'], r['int8']
        if len(fp['per_class']) != k or len(q['per_class']) != k:
            fails.append('per-class Dice: %d and %d entries, want %d' % (len(fp['per_class']), len(q['per_class']), k))
        if fp['mean_dice'] != 1 or any(c['dice'] != 1 for c in fp['per_class']):
            fails.append('fp32 Dice against its own argmax is not 1')
        dice = [c['dice'] for c in q['per_class']]
        if not all(0 <= d <= 1 for d in dice) or not 0 <= q['mean_dice'] <= 1:
            fails.append('int8 Dice out of [0, 1]: %s' % dice)
        drops = [fp['mean_dice'] - q['mean_dice']] + [a['dice'] - b['dice'] for a, b in zip(fp['per_class'], q['per_class'])]
        want = 'APPROVED' if max(drops) <= 0.01 + 1e-9 else 'REJECTED'
        if r['verdict'] != want or p.returncode != (0 if want == 'APPROVED' else 3):
            fails.append('verdict %s (exit %d), the 0.01 gate says %s' % (r['verdict'], p.returncode, want))

        print('%-8s %12s %8s %8s' % ('class', 'voxels', 'fp32', 'int8'))
        for a, b in zip(fp['per_class'], q['per_class']):
            print('%-8d %12d %8.4f %8.4f%s' % (a['class'], a['label_voxels'], a['dice'], b['dice'],
                                              '  (absent)' if a['absent'] else ''))
        print('mean Dice: fp32 %.4f, int8 %.4f (drop %.4f); flipped voxels %d of %d (%.3f%%); %s' % (
            fp['mean_dice'], q['mean_dice'], fp['mean_dice'] - q['mean_dice'], r['flipped_voxels'], r['voxels'],
            100.0 * r['flipped_voxels'] / r['voxels'], r['verdict']))
        print('ms per volume: fp32 %.1f, int8 %.1f' % (fp['ms_per_image'], q['ms_per_image']))
        if fails:
            sys.exit('FAIL:\n  ' + '\n  '.join(fails))
    print('OK')


if __name__ == '__main__':
    main()
