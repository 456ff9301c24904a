#!/usr/bin/python3
"""Train the small skin-lesion classifier that ships as models/skin_cnn.onnx.

Usage: train_skin_cnn.py [--data DIR] [--out FILE] [--epochs N]

Data: skin_isic_8c (128x128 RGB uint8 dermoscopy, 8 classes); see
../shared/data/skin_isic_8c/README.md. Training uses the train split; the last epoch is exported
(no model selection on val), and the reported accuracy is on val.

Unlike the brain-tumor models, this one takes *model-ready* input: float32 [N, 3, 96, 96],
ImageNet-normalised. The raw uint8 images become that input exactly as `octet quantize/validate
--preprocess imagenet` makes it: bilinear resize 128 -> 96 with half-pixel centres and no
antialiasing (F.interpolate, align_corners=False), x/255, (x - mean_c) / std_c. So the model is
the end-to-end test of --preprocess on a real data set (resize, scale, per-channel mean/std).
Seeds are fixed, torch runs on 2 threads with deterministic algorithms.
"""
import argparse
import os
import time

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, '..', '..', 'shared', 'data', 'skin_isic_8c')
SIZE = 96
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


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


class SkinCNN(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.features = nn.Sequential(
            conv_bn_relu(3, 24, 2),      # 48x48
            conv_bn_relu(24, 48, 2),     # 24x24
            ResidualBlock(48),
            conv_bn_relu(48, 96, 2),     # 12x12
            ResidualBlock(96),
            conv_bn_relu(96, 160, 2),    # 6x6
        )
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(160, num_classes)

    def forward(self, x):
        x = self.features(x)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(self.drop(x))


def preprocess(x_uint8):
    """[N, 128, 128, 3] uint8 -> [N, 3, 96, 96] float32, as octet's --preprocess imagenet."""
    out = []
    for i in range(0, len(x_uint8), 256):
        xb = torch.from_numpy(x_uint8[i:i + 256]).permute(0, 3, 1, 2).float()
        xb = F.interpolate(xb, size=(SIZE, SIZE), mode='bilinear', align_corners=False, antialias=False)
        xb = xb / 255.0
        xb = (xb - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
        out.append(xb)
    return torch.cat(out).contiguous()


def load_split(data_dir, split):
    d = np.load(os.path.join(data_dir, 'skin_isic_8c_128_%s.npz' % split))
    return d['x'], d['y'], [str(c) for c in d['class_names']]


def augment(xb, gen):
    """Dermoscopy has no up or left: random flips, 90-degree turns and shifts of up to 6 pixels."""
    n = xb.shape[0]
    hflip = torch.rand(n, generator=gen) < 0.5
    vflip = torch.rand(n, generator=gen) < 0.5
    xb = torch.where(hflip[:, None, None, None], xb.flip(3), xb)
    xb = torch.where(vflip[:, None, None, None], xb.flip(2), xb)
    turn = torch.rand(n, generator=gen) < 0.5
    xb = torch.where(turn[:, None, None, None], xb.transpose(2, 3), xb)
    pad = 6
    padded = F.pad(xb, (pad, pad, pad, pad), mode='reflect')
    out = torch.empty_like(xb)
    offs = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen)
    for i in range(n):
        dy, dx = int(offs[i, 0]), int(offs[i, 1])
        out[i] = padded[i, :, dy:dy + SIZE, dx:dx + SIZE]
    return out


def predict(model, x, batch=256):
    model.eval()
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch]).argmax(1) for i in range(0, len(x), batch)]).numpy()


def report(tag, pred, y, classes):
    print('%s val acc %.4f (%d/%d); per-class recall %s' % (
        tag, (pred == y).mean(), int((pred == y).sum()), len(y),
        ', '.join('%s %.3f' % (c, (pred[y == k] == k).mean()) for k, c in enumerate(classes))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--data', default=DEFAULT_DATA)
    ap.add_argument('--out', default=os.path.join(HERE, 'skin_cnn.onnx'))
    ap.add_argument('--epochs', type=int, default=40)
    ap.add_argument('--batch', type=int, default=32)
    args = ap.parse_args()

    torch.manual_seed(20261122)
    np.random.seed(20261122)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)

    xtr_raw, ytr, classes = load_split(args.data, 'train')
    xva_raw, yva, _ = load_split(args.data, 'val')
    xtr, xva = preprocess(xtr_raw), preprocess(xva_raw)
    ytr_t = torch.from_numpy(ytr)
    print('train %d, val %d, %d classes, input %s' % (len(xtr), len(xva), len(classes), tuple(xtr.shape[1:])))

    model = SkinCNN(len(classes))
    steps_per_epoch = (len(xtr) + args.batch - 1) // args.batch
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, epochs=args.epochs,
                                                steps_per_epoch=steps_per_epoch, pct_start=0.15)
    gen = torch.Generator().manual_seed(1)
    t_start = time.time()
    for epoch in range(args.epochs):
        model.train()
        t0 = time.time()
        perm = torch.randperm(len(xtr), generator=gen)
        loss_sum = 0.0
        for s in range(steps_per_epoch):
            idx = perm[s * args.batch:(s + 1) * args.batch]
            loss = F.cross_entropy(model(augment(xtr[idx], gen)), ytr_t[idx], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss) * len(idx)
        acc = (predict(model, xva) == yva).mean()
        print('epoch %2d  loss %.4f  val acc %.4f  (%.1f s)' %
              (epoch + 1, loss_sum / len(xtr), acc, time.time() - t0), flush=True)
    print('training time %.1f s' % (time.time() - t_start))

    model.eval()
    torch.onnx.export(model, torch.zeros(1, 3, SIZE, SIZE), args.out, opset_version=13, input_names=['image'],
                      output_names=['logits'], dynamic_axes={'image': {0: 'batch'}, 'logits': {0: 'batch'}})
    import onnx
    onnx.checker.check_model(onnx.load(args.out))
    print('wrote %s (%d bytes)' % (args.out, os.path.getsize(args.out)))
    report('torch', predict(model, xva), yva, classes)


if __name__ == '__main__':
    main()
