"""A plain 3D U-Net for 96^3 single-channel patches, the shape of the segmentation workloads.

Encoder 16-32-64 with a 128-channel bottleneck; every level is two 3x3x3 Conv-Norm-ReLU;
MaxPool3d(2) goes down, ConvTranspose3d(k=2, s=2) goes up, and the skip is a channel concat.
`norm` picks BatchNorm3d or InstanceNorm3d(affine) so the zoo covers both normalisations.
"""
import torch
import torch.nn as nn


def _norm(kind, ch):
    if kind == 'batch':
        return nn.BatchNorm3d(ch)
    if kind == 'instance':
        return nn.InstanceNorm3d(ch, affine=True)
    raise ValueError('norm must be "batch" or "instance", not %r' % (kind,))


class DoubleConv3d(nn.Sequential):
    def __init__(self, cin, cout, norm):
        super().__init__(
            nn.Conv3d(cin, cout, 3, padding=1, bias=False), _norm(norm, cout), nn.ReLU(inplace=True),
            nn.Conv3d(cout, cout, 3, padding=1, bias=False), _norm(norm, cout), nn.ReLU(inplace=True))


class UNet3D(nn.Module):
    def __init__(self, in_channels=1, num_classes=14, channels=(16, 32, 64, 128), norm='batch'):
        super().__init__()
        c = list(channels)
        self.down = nn.ModuleList()
        prev = in_channels
        for ch in c[:-1]:
            self.down.append(DoubleConv3d(prev, ch, norm))
            prev = ch
        self.pool = nn.MaxPool3d(2)
        self.bottleneck = DoubleConv3d(c[-2], c[-1], norm)
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in range(len(c) - 1, 0, -1):
            self.up.append(nn.ConvTranspose3d(c[i], c[i - 1], kernel_size=2, stride=2))
            self.dec.append(DoubleConv3d(2 * c[i - 1], c[i - 1], norm))
        self.head = nn.Conv3d(c[0], num_classes, 1)

    def forward(self, x):
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            x = dec(torch.cat([up(x), skip], dim=1))
        return self.head(x)
