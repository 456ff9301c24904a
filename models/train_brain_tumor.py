#!/usr/bin/python3
"""Train the small brain-tumor MRI classifier that ships as models/brain_tumor_cnn.onnx.

Usage: train_brain_tumor.py [--data DIR] [--out FILE] [--epochs N]

Data: brain_tumor_mri_4c (128x128 uint8 grayscale, 4 classes: glioma, meningioma, notumor,
pituitary); see ../shared/data/brain_tumor_mri_4c/README.md. Training uses the train split,
model selection nothing (the last epoch is exported), and the reported accuracy is on val.

The exported model takes raw pixels: float32 [N,1,128,128] in 0..255. The scaling
(x/255 - mean)/std is the first two nodes of the graph, so callers never normalise by hand.
Seeds are fixed, torch runs on 2 threads with deterministic algorithms: a rerun on the same
machine and torch build reproduces the same weights.
"""
import argparse
import os
import time

# Sleep rather than spin at OpenMP barriers: the machine is shared with compilers, and a
# spinning thread whose partner is descheduled wastes its whole time slice.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, '..', '..', 'shared', 'data', 'brain_tumor_mri_4c')
CLASSES = ['glioma', 'meningioma', 'notumor', 'pituitary']


def conv_bn_relu(cin, cout, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    """Two 3x3 Conv-BN, identity shortcut, ReLU after the Add (the ResNet basic block)."""

    def __init__(self, ch):
        super().__init__()
        self.conv1 = conv_bn_relu(ch, ch, 1)
        self.conv2 = nn.Conv2d(ch, ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)

    def forward(self, x):
        return F.relu(x + self.bn2(self.conv2(self.conv1(x))))


class BrainTumorCNN(nn.Module):
    def __init__(self, mean, std, num_classes=4):
        super().__init__()
        # Scaling constants live in the graph so the model input is raw 0..255 pixels.
        self.register_buffer('scale', torch.tensor([[[[1.0 / (255.0 * std)]]]]))
        self.register_buffer('shift', torch.tensor([[[[-mean / std]]]]))
        self.features = nn.Sequential(
            conv_bn_relu(1, 16, 2),      # 64x64
            conv_bn_relu(16, 32, 2),     # 32x32
            conv_bn_relu(32, 64, 2),     # 16x16
            ResidualBlock(64),
            conv_bn_relu(64, 128, 2),    # 8x8
            ResidualBlock(128),
        )
        self.fc = nn.Linear(128, num_classes)

    def forward(self, x):
        x = x * self.scale + self.shift
        x = self.features(x)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


def load_split(data_dir, split):
    d = np.load(os.path.join(data_dir, 'brain_tumor_mri_4c_128_%s.npz' % split))
    return d['x'], d['y']


def augment(xb, gen):
    """Random horizontal flip and a random shift of up to 8 pixels (zero padded)."""
    n = xb.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
    pad = 8
    padded = F.pad(xb, (pad, pad, pad, pad))
    out = torch.empty_like(xb)
    offs = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen)
    for i in range(n):
        dy, dx = int(offs[i, 0]), int(offs[i, 1])
        out[i] = padded[i, :, dy:dy + 128, dx:dx + 128]
    return out


def evaluate(model, x, y, batch=256):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(x[i:i + batch]).float().unsqueeze(1)
            correct += int((model(xb).argmax(1).numpy() == y[i:i + batch]).sum())
    return correct / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--data', default=DEFAULT_DATA)
    ap.add_argument('--out', default=os.path.join(HERE, 'brain_tumor_cnn.onnx'))
    ap.add_argument('--epochs', type=int, default=14)
    ap.add_argument('--batch', type=int, default=64)
    args = ap.parse_args()

    torch.manual_seed(20261122)
    np.random.seed(20261122)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)

    xtr, ytr = load_split(args.data, 'train')
    xva, yva = load_split(args.data, 'val')
    mean = float(xtr.mean()) / 255.0
    std = float(xtr.std()) / 255.0
    print('train %d, val %d, pixel mean %.4f std %.4f' % (len(xtr), len(xva), mean, std))

    model = BrainTumorCNN(mean, std)
    steps_per_epoch = (len(xtr) + args.batch - 1) // args.batch
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, epochs=args.epochs,
                                                steps_per_epoch=steps_per_epoch, pct_start=0.2)
    gen = torch.Generator().manual_seed(1)
    xtr_t = torch.from_numpy(xtr).unsqueeze(1)
    ytr_t = torch.from_numpy(ytr)
    t_start = time.time()
    for epoch in range(args.epochs):
        model.train()
        t0 = time.time()
        perm = torch.randperm(len(xtr), generator=gen)
        loss_sum = 0.0
        for s in range(steps_per_epoch):
            idx = perm[s * args.batch:(s + 1) * args.batch]
            xb = augment(xtr_t[idx].float(), gen)
            loss = F.cross_entropy(model(xb), ytr_t[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss) * len(idx)
        acc = evaluate(model, xva, yva)
        print('epoch %2d  loss %.4f  val acc %.4f  (%.1f s)' %
              (epoch + 1, loss_sum / len(xtr), acc, time.time() - t0), flush=True)
    print('training time %.1f s' % (time.time() - t_start))

    model.eval()
    dummy = torch.zeros(1, 1, 128, 128)
    torch.onnx.export(model, dummy, args.out, opset_version=13, input_names=['image'],
                      output_names=['logits'],
                      dynamic_axes={'image': {0: 'batch'}, 'logits': {0: 'batch'}})
    import onnx
    onnx.checker.check_model(onnx.load(args.out))
    print('wrote %s (%d bytes), torch val acc %.4f' %
          (args.out, os.path.getsize(args.out), evaluate(model, xva, yva)))
    ort_check(args.out, xva, yva)


def ort_check(model_path, x, y):
    """Val accuracy of the exported file under ONNX Runtime (bench/ort_run.js), when node is here."""
    import shutil
    import subprocess
    import tempfile
    ort_run = os.path.join(HERE, '..', 'bench', 'ort_run.js')
    if shutil.which('node') is None:
        print('node not found: skipping the ONNX Runtime check')
        return
    with tempfile.TemporaryDirectory() as tmp:
        np.save(os.path.join(tmp, 'x.npy'), x.astype(np.float32)[:, None])
        subprocess.run(['node', ort_run, model_path, '--input', os.path.join(tmp, 'x.npy'),
                        '--outdir', tmp], check=True, stdout=subprocess.DEVNULL)
        pred = np.load(os.path.join(tmp, 'logits.npy')).argmax(1)
    print('ONNX Runtime val acc %.4f (%d/%d); per-class recall %s' % (
        (pred == y).mean(), int((pred == y).sum()), len(y),
        ', '.join('%s %.3f' % (c, (pred[y == k] == k).mean()) for k, c in enumerate(CLASSES))))


if __name__ == '__main__':
    main()
