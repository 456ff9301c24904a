#!/usr/bin/python3
"""Train the MobileNetV2 brain-tumor MRI classifier that ships as models/brain_tumor_mobilenet_v2.onnx.

Usage: train_mobilenet_v2.py [--data DIR] [--out FILE] [--epochs N] [--width W] [--ckpt FILE]
                             [--export-only]

The second real model next to brain_tumor_cnn.onnx (train_brain_tumor.py, whose data loading,
augmentation and evaluation this script reuses). MobileNetV2 is here for its depthwise 3x3
convolutions and ReLU6 (Clip) activations: one input channel per filter makes per-tensor int8
scales fragile, which is exactly what the quantizer must be tested against.

Architecture: torchvision mobilenet_v2(num_classes=4, width_mult=--width), trained from scratch.
The input is raw pixels, float32 [N,1,128,128] in 0..255. The first two nodes are a Mul and an Add
with [1,3,1,1] constants: broadcasting turns the gray image into 3 channels and applies the
ImageNet normalisation (x/255 - mean_c)/std_c in one step, so no Concat/Expand is needed.

Training: AdamW, one warm-up epoch then cosine decay, label smoothing 0.1, batch 64, random
horizontal flip and shifts of up to 8 pixels, channels_last tensors. The best-val weights are checkpointed after every
epoch (--ckpt) and exported at the end, so a run stopped early still leaves a good model
(--export-only exports the checkpoint). Seeds are fixed, torch runs on 2 threads with
deterministic algorithms.
"""
import argparse
import math
import os
import time

# Sleep rather than spin at OpenMP barriers: the machine is shared (see train_brain_tumor.py).
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402

from train_brain_tumor import (CLASSES, DEFAULT_DATA, HERE, augment, load_split,  # noqa: E402
                               ort_check)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BrainTumorMobileNetV2(nn.Module):
    def __init__(self, width_mult, num_classes=4):
        super().__init__()
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        # [N,1,H,W] * [1,3,1,1] broadcasts to [N,3,H,W]: gray -> RGB and normalisation in one Mul.
        self.register_buffer('scale', 1.0 / (255.0 * std))
        self.register_buffer('shift', -mean / std)
        self.net = torchvision.models.mobilenet_v2(num_classes=num_classes, width_mult=width_mult)

    def forward(self, x):
        return self.net(x * self.scale + self.shift)


def predict(model, x, batch=128):
    """Class predictions for uint8 images x [N,128,128], in the model's own memory format."""
    nhwc = model.net.features[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    fmt = torch.channels_last if nhwc else torch.contiguous_format
    model.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(x[i:i + batch]).float().unsqueeze(1).contiguous(memory_format=fmt)
            preds.append(model(xb).argmax(1).numpy())
    return np.concatenate(preds)


def accuracy_report(pred, y):
    return 'acc %.4f (%d/%d); per-class recall %s' % (
        (pred == y).mean(), int((pred == y).sum()), len(y),
        ', '.join('%s %.3f' % (c, (pred[y == k] == k).mean()) for k, c in enumerate(CLASSES)))


def lr_at(step, warmup_steps, total_steps, base_lr):
    """Linear warm-up, then cosine decay to zero."""
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * t))


def train(args, model, xtr, ytr, xva, yva):
    steps_per_epoch = (len(xtr) + args.batch - 1) // args.batch
    total_steps = steps_per_epoch * args.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.wd)
    gen = torch.Generator().manual_seed(1)
    xtr_t = torch.from_numpy(xtr).unsqueeze(1)
    ytr_t = torch.from_numpy(ytr)
    best = -1.0
    step = 0
    t_start = time.time()
    for epoch in range(args.epochs):
        model.train()
        t0 = time.time()
        perm = torch.randperm(len(xtr), generator=gen)
        loss_sum = 0.0
        for s in range(steps_per_epoch):
            for g in opt.param_groups:
                g['lr'] = lr_at(step, steps_per_epoch, total_steps, args.lr)
            idx = perm[s * args.batch:(s + 1) * args.batch]
            xb = augment(xtr_t[idx].float(), gen).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(xb), ytr_t[idx], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            loss_sum += float(loss) * len(idx)
        acc = float((predict(model, xva) == yva).mean())
        mark = ''
        if acc > best:
            best = acc
            torch.save({'width': args.width, 'epoch': epoch + 1, 'state': model.state_dict()},
                       args.ckpt)
            mark = '  * saved'
        print('epoch %2d  loss %.4f  val acc %.4f  (%.1f s)%s' %
              (epoch + 1, loss_sum / len(xtr), acc, time.time() - t0, mark), flush=True)
    print('training time %.1f s, best val acc %.4f' % (time.time() - t_start, best))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--data', default=DEFAULT_DATA)
    ap.add_argument('--out', default=os.path.join(HERE, 'brain_tumor_mobilenet_v2.onnx'))
    ap.add_argument('--ckpt', default='/tmp/brain_tumor_mobilenet_v2_best.pt')
    ap.add_argument('--epochs', type=int, default=10)
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--width', type=float, default=0.5)
    ap.add_argument('--lr', type=float, default=3e-3)
    ap.add_argument('--wd', type=float, default=0.02)
    ap.add_argument('--export-only', action='store_true',
                    help='skip training; export the weights in --ckpt')
    args = ap.parse_args()

    torch.manual_seed(20261122)
    np.random.seed(20261122)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)

    xtr, ytr = load_split(args.data, 'train')
    xva, yva = load_split(args.data, 'val')
    print('train %d, val %d, width_mult %g' % (len(xtr), len(xva), args.width))

    model = BrainTumorMobileNetV2(args.width)
    if not args.export_only:
        # NHWC lets oneDNN run the depthwise convolutions and BatchNorm without layout
        # conversions: about 3x less CPU per step than NCHW with this torch build.
        model = model.to(memory_format=torch.channels_last)
        train(args, model, xtr, ytr, xva, yva)
        model = model.to(memory_format=torch.contiguous_format)
    saved = torch.load(args.ckpt)
    if saved['width'] != args.width:
        raise SystemExit('%s holds width_mult %g, not %g' % (args.ckpt, saved['width'], args.width))
    model.load_state_dict(saved['state'])
    model.eval()
    print('exporting the epoch %d weights' % saved['epoch'])

    dummy = torch.zeros(1, 1, 128, 128)
    torch.onnx.export(model, dummy, args.out, opset_version=13, input_names=['image'],
                      output_names=['logits'],
                      dynamic_axes={'image': {0: 'batch'}, 'logits': {0: 'batch'}})
    import onnx
    onnx.checker.check_model(onnx.load(args.out))
    print('wrote %s (%d bytes)' % (args.out, os.path.getsize(args.out)))
    print('torch val ' + accuracy_report(predict(model, xva), yva))
    ort_check(args.out, xva, yva)


if __name__ == '__main__':
    main()
