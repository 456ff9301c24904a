#!/usr/bin/python3
"""Export the model zoo (random weights, fixed seeds) to ONNX for the model-level tests.

Usage: export_zoo.py OUTDIR [--only NAME[,NAME...]]

Writes OUTDIR/<name>.onnx for every model and OUTDIR/zoo.json, the manifest the tests read
(name, file, input name/shape/dtype, output names, node counts per op type).

Every model is opset 13 with a dynamic batch dimension. The weights are random, but the
BatchNorm statistics are realistic: the norm layers get random affine parameters, then a few
forward passes over N(0,1) inputs in training mode collect running mean/variance, so in eval
mode every layer sees roughly normalised activations and the outputs neither explode nor vanish
on N(0,1) test inputs.

Models named *_bn (resnet18_bn, unet3d_bn) keep BatchNormalization as separate nodes (exported
with TrainingMode.PRESERVE while the model is in eval mode, which skips the exporter's Conv+BN
folding but still emits inference-mode BatchNormalization with one output); they exist so that
octet's own Conv+BN fusion has something to fold. The others are exported in EVAL mode, where
torch folds BN into the convolutions.
"""
import argparse
import json
import os
import sys
import time
import warnings
import zlib

import onnx
import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unet3d import UNet3D  # noqa: E402

OPSET = 13

# Two exporter warnings that do not apply here, silenced so that CI logs stay readable:
# constant folding is only risky for a model *in training mode* (ours are in eval mode, and
# folding touches no BN parameter), and InstanceNorm3d without running statistics is always
# "train=True" for torch, which is exactly ONNX InstanceNormalization.
warnings.filterwarnings('ignore', message='It is recommended that constant folding be turned off')
warnings.filterwarnings('ignore', message=".*operator 'instance_norm' is set to train=True")
STAT_PASSES = 2

# name: (constructor, input shape with batch 1, keep BatchNormalization nodes)
ZOO = {
    'resnet18': (lambda: torchvision.models.resnet18(weights=None), (1, 3, 224, 224), False),
    'resnet18_bn': (lambda: torchvision.models.resnet18(weights=None), (1, 3, 224, 224), True),
    'resnet50': (lambda: torchvision.models.resnet50(weights=None), (1, 3, 224, 224), False),
    'mobilenet_v2': (lambda: torchvision.models.mobilenet_v2(weights=None), (1, 3, 224, 224), False),
    'efficientnet_b0': (lambda: torchvision.models.efficientnet_b0(weights=None), (1, 3, 224, 224),
                        False),
    'efficientnet_b3': (lambda: torchvision.models.efficientnet_b3(weights=None, num_classes=9),
                        (1, 3, 300, 300), False),
    'unet3d_bn': (lambda: UNet3D(norm='batch'), (1, 1, 96, 96, 96), True),
    'unet3d_in': (lambda: UNet3D(norm='instance'), (1, 1, 96, 96, 96), False),
}

NORM_TYPES = (nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm3d)
BN_TYPES = (nn.BatchNorm2d, nn.BatchNorm3d)


def seed_for(name):
    return zlib.crc32(name.encode())


def probe_shape(shape):
    """The input shape for statistics and the sanity forward pass: volumes are cut to 64^3,
    which gives the same per-channel statistics on N(0,1) data at a third of the cost."""
    return tuple(shape[:2]) + tuple(min(d, 64) for d in shape[2:]) if len(shape) == 5 else shape


def output_shapes(proto):
    """Output shapes from the exported graph, with the symbolic batch set to 1."""
    return [[d.dim_value if d.HasField('dim_value') else 1 for d in o.type.tensor_type.shape.dim]
            for o in proto.graph.output]


def calibrate_norms(model, shape, gen):
    """Random affine parameters, then running statistics from N(0,1) inputs."""
    norms = [m for m in model.modules() if isinstance(m, NORM_TYPES)]
    with torch.no_grad():
        for m in norms:
            if m.affine:
                m.weight.copy_(torch.empty_like(m.weight).uniform_(0.5, 1.5, generator=gen))
                m.bias.copy_(torch.empty_like(m.bias).normal_(0.0, 0.1, generator=gen))
    bns = [m for m in norms if isinstance(m, BN_TYPES)]
    if not bns:
        return
    # Only BN in training mode: dropout and stochastic depth stay off while we measure.
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the passes
        m.train()
    with torch.no_grad():
        for _ in range(STAT_PASSES):
            model(torch.randn(shape, generator=gen))
    for m in bns:
        m.momentum = 0.1
    model.eval()


def export_one(name, outdir):
    ctor, shape, keep_bn = ZOO[name]
    torch.manual_seed(seed_for(name))
    gen = torch.Generator().manual_seed(seed_for(name) + 1)
    model = ctor()
    calibrate_norms(model, probe_shape(shape), gen)
    model.eval()
    with torch.no_grad():
        y = model(torch.randn(probe_shape(shape), generator=gen))
    if not 1e-2 < float(y.std()) < 1e2:
        raise RuntimeError('%s: output std %.3g on N(0,1) input, activations exploded or vanished'
                           % (name, float(y.std())))
    x = torch.zeros(shape)  # only traced: the export needs the full input shape
    path = os.path.join(outdir, name + '.onnx')
    mode = torch.onnx.TrainingMode.PRESERVE if keep_bn else torch.onnx.TrainingMode.EVAL
    torch.onnx.export(model, x, path, opset_version=OPSET, training=mode,
                      do_constant_folding=True, input_names=['input'], output_names=['output'],
                      dynamic_axes={'input': {0: 'batch'}, 'output': {0: 'batch'}})
    proto = onnx.load(path)
    onnx.checker.check_model(proto)
    ops = {}
    for node in proto.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    bn_nodes = [n for n in proto.graph.node if n.op_type == 'BatchNormalization']
    if keep_bn and (not bn_nodes or any(len(n.output) != 1 for n in bn_nodes)):
        raise RuntimeError('%s: expected inference BatchNormalization nodes with one output' % name)
    if not keep_bn and bn_nodes:
        raise RuntimeError('%s: %d BatchNormalization nodes were not folded' % (name, len(bn_nodes)))
    return {
        'name': name,
        'file': name + '.onnx',
        'inputs': [{'name': 'input', 'shape': list(shape), 'dtype': 'float32'}],
        'outputs': [{'name': 'output', 'shape': output_shapes(proto)[0], 'dtype': 'float32'}],
        'opset': OPSET,
        'batchnorm_nodes': len(bn_nodes),
        'ops': dict(sorted(ops.items())),
        'torch_output_std': round(float(y.std()), 6),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('outdir')
    ap.add_argument('--only', help='comma-separated subset of: ' + ', '.join(ZOO))
    args = ap.parse_args()
    names = list(ZOO)
    if args.only:
        names = args.only.split(',')
        unknown = [n for n in names if n not in ZOO]
        if unknown:
            ap.error('unknown model(s): %s' % ', '.join(unknown))
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    os.makedirs(args.outdir, exist_ok=True)
    manifest_path = os.path.join(args.outdir, 'zoo.json')
    # Keep entries of models not re-exported this time (an --only run updates in place).
    entries = {}
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            entries = {m['name']: m for m in json.load(f)['models'] if m['name'] in ZOO}
    t_all = time.time()
    for name in names:
        t0 = time.time()
        entries[name] = export_one(name, args.outdir)
        e = entries[name]
        print('%-16s %6.1f s  %7.1f MB  BN nodes %3d  output %s std %.3g' % (
            name, time.time() - t0, os.path.getsize(os.path.join(args.outdir, e['file'])) / 1e6,
            e['batchnorm_nodes'], e['outputs'][0]['shape'], e['torch_output_std']), flush=True)
    ordered = [entries[n] for n in ZOO if n in entries]
    with open(manifest_path, 'w') as f:
        # One model per line: readable, and diffs stay small.
        f.write('{"opset": %d, "models": [\n%s\n]}\n' % (
            OPSET, ',\n'.join(json.dumps(m) for m in ordered)))
    print('exported %d model(s) in %.1f s to %s' % (len(names), time.time() - t_all, args.outdir))


if __name__ == '__main__':
    main()
