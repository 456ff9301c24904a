#!/usr/bin/python3
"""Static int8 quantization of an fp32 ONNX model into a QDQ model.

Usage: quantize_qdq.py FP32.onnx OUT.onnx [--calib N] [--seed S] [--act u8|s8]
                       [--calib-npz FILE.npz]
       quantize_qdq.py --zoo ZOO_DIR OUT_DIR [--only NAME,...] [--calib N] [--seed S] [--act u8|s8]

The QDQ layout follows ONNX Runtime's QDQ quantizer (quantize_static, QuantFormat.QDQ,
per_channel=True, MinMax calibration), so that both ONNX Runtime and octet fuse it into int8 ops:
- BatchNormalization after a Conv is folded into the Conv first; Identity nodes are bypassed.
- Weights of Conv/Gemm/MatMul are int8, symmetric per output channel (axis 0; ConvTranspose axis 1,
  Gemm with transB=0 and MatMul axis 1), read through DequantizeLinear. Biases are int32 at
  scale s_x * s_w[c] with zero point 0, also through DequantizeLinear.
- Activations are per-tensor, asymmetric uint8 (or int8 with --act s8) from the minimum and
  maximum seen while the fp32 model runs in ONNX Runtime (bench/ort_tensors.js) on N inputs: N(0,1)
  noise with a fixed seed, or the images of --calib-npz (key x, uint8 [N, H, W], fed as raw
  pixel values with a channel axis). Every activation that a quantizable op reads or writes gets
  QuantizeLinear -> DequantizeLinear; a Relu (or a Clip whose range holds 0) right after a
  quantized op is removed and its range becomes that op's output quantization, as ONNX Runtime
  does, since a uint8 zero point at the clamp makes the QuantizeLinear do the clamp.
- Data-movement ops (MaxPool, Resize, Flatten, Reshape, ...) reuse their input's parameters for
  their output, so they can run on 8-bit data directly.
- Constant inputs of Add/Mul/Concat become 8-bit initializers with their own range.

--zoo quantizes every model of ZOO_DIR/zoo.json (written by export_zoo.py) into OUT_DIR, and also
models/brain_tumor_cnn.onnx when it exists, calibrated on the real images of
../shared/data/brain_tumor_mri_4c/*_calib.npz. OUT_DIR/quantize.json records what was done.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ORT_TENSORS = os.path.join(ROOT, 'bench', 'ort_tensors.js')
BRAIN_TUMOR = 'brain_tumor_cnn'
BRAIN_TUMOR_CALIB = os.path.join(ROOT, '..', 'shared', 'data', 'brain_tumor_mri_4c',
                                 'brain_tumor_mri_4c_128_calib.npz')

GEMM_OPS = ('Conv', 'ConvTranspose', 'Gemm', 'MatMul')
# Ops whose every float activation input and whose output get their own quantization.
ELTWISE_OPS = ('Add', 'Mul', 'Concat')
UNARY_OPS = ('GlobalAveragePool', 'AveragePool', 'Sigmoid', 'InstanceNormalization', 'Relu', 'Clip')
# Ops that move or select values: their output takes the parameters of their input.
SAME_AS_INPUT_OPS = ('MaxPool', 'Resize', 'Flatten', 'Reshape', 'Transpose', 'Squeeze', 'Unsqueeze')
REMOVABLE_ACTIVATIONS = ('Relu', 'Clip')

# Calibration inputs when none are asked for: 8 images, or 4 volumes (a 96^3 N(0,1) volume already
# has ~10^6 samples per channel, and each fp32 run with every activation as output is heavy).
DEFAULT_CALIB, VOLUME_CALIB = 8, 4

QTYPES = {
    'u8': (TensorProto.UINT8, np.uint8, 0, 255),
    's8': (TensorProto.INT8, np.int8, -128, 127),
}


class QuantizeError(Exception):
    pass


# ---- graph helpers ------------------------------------------------------------------------------

class Graph:
    """The parts of a GraphProto this script rewrites, as plain Python lists and dicts."""

    def __init__(self, model):
        g = model.graph
        self.model = model
        self.nodes = list(g.node)
        self.consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        for n in self.nodes:
            if n.op_type == 'Constant' and len(n.attribute) == 1 and n.attribute[0].name == 'value':
                self.consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
        self.inputs = [i.name for i in g.input if i.name not in self.consts]
        self.outputs = [o.name for o in g.output]

    def producers(self):
        return {o: n for n in self.nodes for o in n.output if o}

    def readers(self):
        r = {}
        for n in self.nodes:
            for i in n.input:
                if i:
                    r.setdefault(i, []).append(n)
        return r

    def rename_input(self, old, new):
        for n in self.nodes:
            for k, i in enumerate(n.input):
                if i == old:
                    n.input[k] = new

    def remove_dead(self):
        """Drops nodes whose outputs nobody reads (repeatedly) and unused constants."""
        while True:
            read = {i for n in self.nodes for i in n.input} | set(self.outputs)
            live = [n for n in self.nodes if any(o in read for o in n.output if o)]
            if len(live) == len(self.nodes):
                break
            self.nodes = live
        read = {i for n in self.nodes for i in n.input} | set(self.outputs)
        self.consts = {k: v for k, v in self.consts.items() if k in read}


def attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def node_label(node):
    return node.name or node.output[0]


def bypass_identities(g):
    """Readers of an Identity read its input (ONNX Runtime's basic optimizations do the same)."""
    for n in list(g.nodes):
        if n.op_type == 'Identity' and n.output[0] not in g.outputs:
            g.rename_input(n.output[0], n.input[0])
            g.nodes.remove(n)


def fold_batchnorm(g):
    """Conv -> BatchNormalization (inference form) becomes one Conv with scaled weights and bias."""
    producers, readers = g.producers(), g.readers()
    folded = 0
    for bn in [n for n in g.nodes if n.op_type == 'BatchNormalization']:
        conv = producers.get(bn.input[0])
        if (conv is None or conv.op_type != 'Conv' or len(bn.output) != 1 or len(readers[bn.input[0]]) != 1
                or bn.input[0] in g.outputs or conv.input[1] not in g.consts
                or any(i not in g.consts for i in bn.input[1:5])
                or (len(conv.input) > 2 and conv.input[2] and conv.input[2] not in g.consts)):
            continue
        gamma, beta, mean, var = (g.consts[i].astype(np.float64) for i in bn.input[1:5])
        f = gamma / np.sqrt(var + attr(bn, 'epsilon', 1e-5))
        w = g.consts[conv.input[1]].astype(np.float64)
        b = (g.consts[conv.input[2]].astype(np.float64) if len(conv.input) > 2 and conv.input[2]
             else np.zeros(w.shape[0]))
        base = node_label(conv)
        g.consts[base + '_folded_W'] = (w * f.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
        g.consts[base + '_folded_B'] = ((b - mean) * f + beta).astype(np.float32)
        inputs = [conv.input[0], base + '_folded_W', base + '_folded_B']
        del conv.input[:]
        conv.input.extend(inputs)
        conv.output[0] = bn.output[0]
        g.nodes.remove(bn)
        folded += 1
    return folded


def remove_activations(g):
    """A Relu, or a Clip whose range holds 0, right after an op whose output is quantized is
    dropped: that op writes the activation's output tensor, and the activation's range (min 0 for
    a Relu) becomes its quantization, which clamps exactly as the activation did."""
    quantized_output = GEMM_OPS + ELTWISE_OPS + ('GlobalAveragePool', 'AveragePool', 'InstanceNormalization')
    producers, readers = g.producers(), g.readers()
    removed = 0
    for act in [n for n in g.nodes if n.op_type in REMOVABLE_ACTIVATIONS]:
        up = producers.get(act.input[0])
        if up is None or up.op_type not in quantized_output or len(readers[act.input[0]]) != 1:
            continue
        if act.input[0] in g.outputs:
            continue
        if act.op_type == 'Clip':
            lo = attr(act, 'min', -np.inf)
            hi = attr(act, 'max', np.inf)
            bounds = list(act.input[1:3])
            if any(b and b not in g.consts for b in bounds):
                continue
            if len(bounds) > 0 and bounds[0]:
                lo = float(g.consts[bounds[0]])
            if len(bounds) > 1 and bounds[1]:
                hi = float(g.consts[bounds[1]])
            if not lo <= 0.0 <= hi:
                continue
        k = list(up.output).index(act.input[0])
        up.output[k] = act.output[0]
        g.nodes.remove(act)
        removed += 1
    g.remove_dead()
    return removed


# ---- the quantization plan ----------------------------------------------------------------------

class Plan:
    """Which tensors get which quantization, decided before any statistics are known."""

    def __init__(self):
        self.own = []        # activation tensors quantized with their own range, in graph order
        self.same = {}       # tensor -> tensor whose parameters it shares
        self.weights = {}    # id(node) -> (weight axis, the activation tensor it multiplies)
        self.biases = set()  # id(node) of GEMM-shaped nodes whose bias becomes int32
        self.const8 = []     # constant inputs of element-wise ops quantized as 8-bit tensors

    def quantized(self, t):
        return t in self.same or t in self.own

    def mark(self, t):
        if not self.quantized(t):
            self.own.append(t)


def weight_axis(node, w):
    if node.op_type == 'Conv':
        return 0
    if node.op_type == 'ConvTranspose':
        return 1
    if node.op_type == 'Gemm':
        return 0 if attr(node, 'transB', 0) else 1
    return w.ndim - 1 if w.ndim == 2 else None  # MatMul: per column of a 2-D weight


def make_plan(g):
    plan = Plan()
    readers = g.readers()
    is_float_act = lambda t: t and t not in g.consts  # noqa: E731
    for n in g.nodes:
        op = n.op_type
        if op in GEMM_OPS:
            if len(n.input) < 2 or not is_float_act(n.input[0]):
                continue
            if n.input[1] in g.consts:
                axis = weight_axis(n, g.consts[n.input[1]])
                if axis is None:
                    continue
                plan.weights[id(n)] = (axis, n.input[0])
                if len(n.input) > 2 and n.input[2]:
                    if n.input[2] not in g.consts:
                        continue
                    plan.biases.add(id(n))
            elif op == 'MatMul':
                plan.mark(n.input[1])
            else:
                continue
            plan.mark(n.input[0])
            plan.mark(n.output[0])
        elif op in ELTWISE_OPS:
            for i in n.input:
                if is_float_act(i):
                    plan.mark(i)
                elif i and i not in plan.const8:
                    plan.const8.append(i)
            plan.mark(n.output[0])
        elif op in UNARY_OPS:
            if not is_float_act(n.input[0]):
                continue
            if op in REMOVABLE_ACTIVATIONS and not plan.quantized(n.input[0]):
                continue  # a float activation between float ops stays float
            plan.mark(n.input[0])
            plan.mark(n.output[0])
        elif op in SAME_AS_INPUT_OPS:
            src = n.input[0]
            if not plan.quantized(src) or plan.quantized(n.output[0]):
                continue
            if op == 'MaxPool' and len(n.output) > 1 and n.output[1] and readers.get(n.output[1]):
                continue
            plan.same[n.output[0]] = plan.same.get(src, src)
    # A constant of an element-wise op that is also a weight stays a weight only.
    plan.const8 = [c for c in plan.const8 if c in g.consts and g.consts[c].dtype == np.float32]
    return plan


# ---- calibration --------------------------------------------------------------------------------

def input_shape(model, batch):
    g = model.graph
    inits = {t.name for t in g.initializer}
    ins = [i for i in g.input if i.name not in inits]
    if len(ins) != 1:
        raise QuantizeError('the model has %d inputs; this quantizer calibrates one' % len(ins))
    dims = ins[0].type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField('dim_value') else batch for d in dims]
    if ins[0].type.tensor_type.elem_type != TensorProto.FLOAT:
        raise QuantizeError('input %s is not float32' % ins[0].name)
    return ins[0].name, shape


def default_calib(model):
    _, shape = input_shape(model, 1)
    return VOLUME_CALIB if len(shape) >= 5 else DEFAULT_CALIB


def random_batches(model, n, seed):
    _, shape = input_shape(model, 1)
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(n)]


def npz_batches(model, path, n, batch=32):
    """Images x uint8 [N, H, W] (or with channels) as float32 raw pixel values of the input's shape."""
    _, shape = input_shape(model, 1)
    with np.load(path) as d:
        if 'x' not in d:
            raise QuantizeError('%s has no array x' % path)
        x = d['x']
    if n:
        x = x[:n]
    if x.ndim == len(shape) - 1:
        x = x[:, None]
    if list(x.shape[1:]) != shape[1:]:
        raise QuantizeError('%s: images of shape %s, the model takes %s' % (path, list(x.shape[1:]), shape[1:]))
    return [x[i:i + batch].astype(np.float32) for i in range(0, len(x), batch)]


def calibrate(g, tensors, batches, threads=0):
    """min/max of each tensor over the batches, from ONNX Runtime running the (BN-folded) fp32
    graph with those tensors added to its outputs."""
    if shutil.which('node') is None or not os.path.exists(ORT_TENSORS):
        raise QuantizeError('calibration needs node and %s (with bench/node_modules)' % ORT_TENSORS)
    stats = {}
    in_name = g.inputs[0]
    if in_name in tensors:
        stats[in_name] = (float(min(b.min() for b in batches)), float(max(b.max() for b in batches)))
    wanted = [t for t in tensors if t != in_name]
    work = tempfile.mkdtemp(prefix='quantize_qdq_')
    try:
        model = to_model(g, g.model, extra_outputs=wanted)
        model_path = os.path.join(work, 'calib.onnx')
        onnx.save(model, model_path)
        files = []
        for k, b in enumerate(batches):
            files.append(os.path.join(work, 'calib_%d.npy' % k))
            np.save(files[-1], b)
        p = subprocess.run(['node', ORT_TENSORS, model_path] + files + ['--threads', str(threads)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            raise QuantizeError('calibration run failed: ' + p.stderr.strip()[-800:])
        got = json.loads(p.stdout)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    missing = [t for t in wanted if t not in got]
    if missing:
        raise QuantizeError('ONNX Runtime gave no statistics for %s' % ', '.join(missing[:5]))
    stats.update({t: tuple(got[t]) for t in wanted})
    return stats


# ---- parameters ---------------------------------------------------------------------------------

def activation_params(lo, hi, act):
    """ONNX Runtime's asymmetric MinMax parameters: the range always holds 0."""
    _, npt, qmin, qmax = QTYPES[act]
    lo, hi = np.float32(min(lo, 0.0)), np.float32(max(hi, 0.0))
    if hi == lo:
        return np.float32(1.0), npt(0)
    scale = np.float32((hi - lo) / np.float32(qmax - qmin))
    zp = int(np.clip(np.round(qmin - lo / scale), qmin, qmax))
    return scale, npt(zp)


def quantize_weight(w, axis):
    """Symmetric int8 per channel on axis: scale = max|w| / 127 (1 for an all-zero channel)."""
    moved = np.moveaxis(w.astype(np.float32), axis, 0).reshape(w.shape[axis], -1)
    absmax = np.abs(moved).max(axis=1) if moved.size else np.zeros(w.shape[axis], np.float32)
    scale = (absmax / np.float32(127)).astype(np.float32)
    scale[scale < np.finfo(np.float32).tiny] = 1.0
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


def quantize_bias(b, x_scale, w_scale, what):
    """int32 at scale s_x * s_w[c] (float32, as DequantizeLinear multiplies)."""
    scale = (np.float32(x_scale) * w_scale).astype(np.float32)
    q = np.round(b.astype(np.float64) / scale.astype(np.float64))
    if np.any(np.abs(q) > 2**31 - 1):
        raise QuantizeError('%s: the bias does not fit int32 at the input x weight scale' % what)
    return q.astype(np.int32), scale


# ---- writing the QDQ graph ----------------------------------------------------------------------

def to_model(g, template, extra_outputs=()):
    """A ModelProto of g's nodes and constants, with the template's inputs, outputs and metadata."""
    from_nodes = {n.output[0] for n in g.nodes if n.op_type == 'Constant'}
    graph = helper.make_graph(
        g.nodes, template.graph.name,
        [i for i in template.graph.input if i.name not in g.consts or i.name in g.inputs],
        list(template.graph.output),
        [numpy_helper.from_array(v, k) for k, v in g.consts.items() if k not in from_nodes])
    for t in extra_outputs:
        if t not in g.outputs:
            graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, None))
    return helper.make_model(graph, opset_imports=list(template.opset_import),
                             producer_name='octet quantize_qdq.py', ir_version=template.ir_version)


class Writer:
    """Builds the QDQ graph: new nodes in order, new initializers, unique names."""

    def __init__(self, g, plan):
        self.g, self.plan = g, plan
        self.params = {}  # activation -> (scale, zero point) initializer names
        self.nodes = []
        self.names = {o for n in g.nodes for o in n.output} | set(g.consts) | set(g.inputs)
        self.count = {'QuantizeLinear': 0, 'DequantizeLinear': 0}

    def unique(self, base):
        name, k = base, 1
        while name in self.names:
            name, k = '%s_%d' % (base, k), k + 1
        self.names.add(name)
        return name

    def const(self, base, value):
        name = self.unique(base)
        self.g.consts[name] = value
        return name

    def node(self, op, inputs, output, **attrs):
        self.count[op] += 1
        self.nodes.append(helper.make_node(op, inputs, [output], name=self.unique(output + '_node'), **attrs))

    def tensor_params(self, t):
        """Scale and zero-point initializer names of activation t (shared ones by reference)."""
        src = self.plan.same.get(t, t)
        if src not in self.params:
            raise QuantizeError('internal: no parameters for %s' % src)
        return self.params[src]

    def qdq(self, t_float, t_out, t):
        """QuantizeLinear(t_float) -> DequantizeLinear -> t_out with the parameters of t."""
        scale, zp = self.tensor_params(t)
        q = self.unique(t + '_QuantizeLinear_Output')
        self.node('QuantizeLinear', [t_float, scale, zp], q)
        self.node('DequantizeLinear', [q, scale, zp], t_out)

    def dequantized_const(self, base, q, scale, zp, axis=None):
        qn = self.const(base + '_quantized', q)
        sn = self.const(base + '_scale', scale)
        zn = self.const(base + '_zero_point', zp)
        out = self.unique(base + '_DequantizeLinear_Output')
        if axis is None:
            self.node('DequantizeLinear', [qn, sn, zn], out)
        else:
            self.node('DequantizeLinear', [qn, sn, zn], out, axis=axis)
        return out


def write_qdq(g, plan, stats, act):
    qtype_np = QTYPES[act][1]
    w = Writer(g, plan)
    # Activation parameters as initializers, one pair per tensor with its own range.
    for t in plan.own:
        lo, hi = stats[t]
        s, z = activation_params(lo, hi, act)
        w.params[t] = (w.const(t + '_scale', np.array(s, np.float32)), w.const(t + '_zero_point', np.array(z, qtype_np)))
    # Constant inputs of element-wise ops: 8-bit tensors with their own range.
    const_dq = {}
    for c in plan.const8:
        v = g.consts[c]
        s, z = activation_params(float(v.min()), float(v.max()), act)
        _, npt, qmin, qmax = QTYPES[act]
        q = np.clip(np.round(v / s) + int(z), qmin, qmax).astype(npt)
        const_dq[c] = w.dequantized_const(c, q, np.array(s, np.float32), np.array(z, npt))
    # Graph inputs that are quantized: Q/DQ first, readers rewired to the DQ output.
    for t in g.inputs:
        if plan.quantized(t):
            out = w.unique(t + '_DequantizeLinear_Output')
            w.qdq(t, out, t)
            g.rename_input(t, out)
    for c, out in const_dq.items():
        for n in g.nodes:
            if n.op_type in ELTWISE_OPS:
                for k, i in enumerate(n.input):
                    if i == c:
                        n.input[k] = out
    for n in g.nodes:
        if id(n) in plan.weights:
            axis, x = plan.weights[id(n)]
            wq, ws = quantize_weight(g.consts[n.input[1]], axis)
            base = node_label(n).strip('/').replace('/', '_') + '_W'
            n.input[1] = w.dequantized_const(base, wq, ws, np.zeros(ws.shape, np.int8), axis)
            if id(n) in plan.biases:
                b = g.consts[n.input[2]].astype(np.float32).reshape(-1)
                channels = ws.size * (attr(n, 'group', 1) if n.op_type == 'ConvTranspose' else 1)
                if b.size == 1 and channels > 1:
                    b = np.full(channels, b[0], np.float32)
                if b.size != channels:
                    raise QuantizeError('%s: bias of %d values for %d channels' % (node_label(n), b.size, channels))
                xs = g.consts[w.tensor_params(x)[0]]
                bq, bs = quantize_bias(b, xs, np.tile(ws, channels // ws.size), node_label(n))
                n.input[2] = w.dequantized_const(base[:-2] + '_bias', bq, bs, np.zeros(bs.shape, np.int32), 0)
        w.nodes.append(n)
        for k, o in enumerate(n.output):
            if o and plan.quantized(o):
                n.output[k] = w.unique(o + '_QuantizeLinear_Input')
                w.qdq(n.output[k], o, o)
    g.nodes = w.nodes
    return w.count


def quantize(src, dst, calib=None, seed=20240601, act='u8', calib_npz=None, log=print):
    """Writes the QDQ model of src to dst; calib None: default_calib (or every image of calib_npz)."""
    t0 = time.time()
    model = onnx.load(src)
    if calib is None:
        calib = 0 if calib_npz else default_calib(model)
    g = Graph(model)
    if len(g.inputs) != 1:
        raise QuantizeError('%s: %d graph inputs, this quantizer handles one' % (src, len(g.inputs)))
    bypass_identities(g)
    folded = fold_batchnorm(g)
    g.remove_dead()
    batches = npz_batches(model, calib_npz, calib) if calib_npz else random_batches(model, calib, seed)
    # The plan is made on the graph without the removable activations, but the statistics come
    # from the graph with them: a removed Relu's range is the one its Q must have.
    with_acts = Graph(to_model(g, model))
    removed = remove_activations(g)
    plan = make_plan(g)
    stats = calibrate(with_acts, plan.own, batches)
    counts = write_qdq(g, plan, stats, act)
    g.remove_dead()
    out = to_model(g, model)
    onnx.checker.check_model(out)
    onnx.save(out, dst)
    info = {
        'source': os.path.abspath(src), 'calibration': calib_npz or 'N(0,1) x %d, seed %d' % (calib, seed),
        'calibration_batches': len(batches), 'activations': act, 'batchnorm_folded': folded,
        'activations_removed': removed, 'quantized_tensors': len(plan.own) + len(plan.same),
        'weights': len(plan.weights), 'int32_biases': len(plan.biases),
        'quantize_nodes': counts['QuantizeLinear'], 'dequantize_nodes': counts['DequantizeLinear'],
        'seconds': round(time.time() - t0, 1),
    }
    log('%s -> %s: %d BN folded, %d Relu/Clip fused into Q, %d activations quantized, %d weights, '
        '%d Q + %d DQ nodes (%.1f s)' % (os.path.basename(src), dst, folded, removed, info['quantized_tensors'],
                                         info['weights'], info['quantize_nodes'], info['dequantize_nodes'],
                                         info['seconds']))
    return info


def quantize_zoo(zoo_dir, out_dir, only, calib, seed, act):
    with open(os.path.join(zoo_dir, 'zoo.json')) as f:
        models = json.load(f)['models']
    jobs = [(m['name'], os.path.join(zoo_dir, m['file']), None) for m in models]
    bt = os.path.join(HERE, BRAIN_TUMOR + '.onnx')
    if os.path.exists(bt) and os.path.exists(BRAIN_TUMOR_CALIB):
        jobs.append((BRAIN_TUMOR, bt, BRAIN_TUMOR_CALIB))
    if only:
        names = only.split(',')
        unknown = sorted(set(names) - {j[0] for j in jobs})
        if unknown:
            raise QuantizeError('not in the zoo: %s' % ', '.join(unknown))
        jobs = [j for j in jobs if j[0] in names]
    os.makedirs(out_dir, exist_ok=True)
    manifest = os.path.join(out_dir, 'quantize.json')
    done = {}
    if os.path.exists(manifest):
        with open(manifest) as f:
            done = json.load(f).get('models', {})
    for name, src, npz in jobs:
        done[name] = quantize(src, os.path.join(out_dir, name + '.onnx'), None if npz else calib, seed, act, npz)
        done[name]['file'] = name + '.onnx'
        with open(manifest, 'w') as f:
            json.dump({'models': done}, f, indent=1, sort_keys=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('src', help='FP32.onnx, or ZOO_DIR with --zoo')
    ap.add_argument('dst', help='OUT.onnx, or OUT_DIR with --zoo')
    ap.add_argument('--zoo', action='store_true', help='quantize every model of SRC/zoo.json into DST')
    ap.add_argument('--only', help='with --zoo: comma-separated model names')
    ap.add_argument('--calib', type=int,
                    help='calibration inputs (default %d, %d for volumes; with --calib-npz the first N '
                         'images, default all)' % (DEFAULT_CALIB, VOLUME_CALIB))
    ap.add_argument('--seed', type=int, default=20240601, help='seed of the N(0,1) calibration inputs')
    ap.add_argument('--act', choices=sorted(QTYPES), default='u8', help='activation type (default u8)')
    ap.add_argument('--calib-npz', help='calibrate on the images x of this .npz instead of noise')
    args = ap.parse_args()
    if args.calib is not None and args.calib < (0 if args.calib_npz else 1):
        ap.error('--calib must be positive')
    try:
        if args.zoo:
            quantize_zoo(args.src, args.dst, args.only, args.calib, args.seed, args.act)
        else:
            quantize(args.src, args.dst, args.calib, args.seed, args.act, args.calib_npz)
    except (QuantizeError, OSError, onnx.checker.ValidationError) as e:
        print('quantize_qdq: %s' % e, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
