#!/usr/bin/python3
"""SVG bar chart of bench/run_bench.py results, written by hand (no plotting package needed).

Usage: chart.py RESULTS.json OUT.svg

One panel per thread count; in each, a group of bars per model: octet and ONNX Runtime, fp32
and int8, median latency in ms. The axis is logarithmic when the latencies span more than a
factor of 20 (a 3D U-Net takes ~100x a MobileNet), linear otherwise.
"""
import json
import math
import sys
from xml.sax.saxutils import escape

# (engine, precision) -> fill; octet blue, ONNX Runtime orange, int8 in the lighter shade.
SERIES = [
    ('octet', 'fp32', '#1f4e99'),
    ('ort', 'fp32', '#d2691e'),
    ('octet', 'int8', '#6a9fe0'),
    ('ort', 'int8', '#f4b27a'),
]
ENGINE_LABEL = {'octet': 'octet', 'ort': 'ONNX Runtime'}

BAR_W = 15
BAR_GAP = 2
GROUP_GAP = 34
PANEL_H = 300
LEFT = 70
TOP_TITLE = 56
PANEL_TOP_PAD = 34
BOTTOM_LABELS = 70


def median_of(row, engine):
    side = row.get(engine) or {}
    v = side.get('median_ms')
    return v if isinstance(v, (int, float)) and v > 0 else None


class Scale:
    """Maps ms to a bar height in pixels, log or linear."""

    def __init__(self, lo, hi, height):
        self.height = height
        self.log = hi / lo > 20
        if self.log:
            self.lo = round_125(lo, up=False)
            self.hi = round_125(hi, up=True)
        else:
            self.lo = 0.0
            step = nice_step(hi / 5)
            self.hi = step * math.ceil(hi / step)

    def y(self, v):
        if self.log:
            f = (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        else:
            f = (v - self.lo) / (self.hi - self.lo)
        return self.height * min(max(f, 0.0), 1.0)

    def ticks(self):
        if self.log:
            out = []
            e = math.floor(math.log10(self.lo) + 1e-9)
            while 10 ** e <= self.hi * 1.0001:
                for m in (1, 2, 5):
                    v = m * 10 ** e
                    if self.lo <= v <= self.hi * 1.0001:
                        out.append((v, m == 1))
                e += 1
            return out
        step = nice_step(self.hi / 5)
        return [(k * step, True) for k in range(int(round(self.hi / step)) + 1)]


def round_125(x, up):
    """The nearest 1, 2 or 5 times a power of ten below (or above) x."""
    e = math.floor(math.log10(x))
    steps = [m * 10.0 ** k for k in (e - 1, e, e + 1) for m in (1, 2, 5)]
    return min(v for v in steps if v >= x) if up else max(v for v in steps if v <= x)


def nice_step(x):
    e = 10 ** math.floor(math.log10(x))
    for m in (1, 2, 5, 10):
        if m * e >= x:
            return m * e
    return 10 * e


def fmt_ms(v):
    if v >= 100:
        return '%.0f' % v
    if v >= 10:
        return '%.1f' % v
    return '%.2f' % v


def text(x, y, s, size=11, anchor='middle', weight='normal', rotate=None, fill='#222'):
    tr = ' transform="rotate(%d %.1f %.1f)"' % (rotate, x, y) if rotate is not None else ''
    return ('<text x="%.1f" y="%.1f" font-size="%d" text-anchor="%s" font-weight="%s" fill="%s"%s>%s</text>'
            % (x, y, size, anchor, weight, fill, tr, escape(str(s))))


def write_chart(results, path, title='octet vs ONNX Runtime: median latency (lower is better)'):
    rows = results['rows'] if isinstance(results, dict) else results
    models = []
    for r in rows:
        if r['model'] not in models:
            models.append(r['model'])
    threads = sorted({r['threads'] for r in rows})
    precisions = {r['precision'] for r in rows}
    series = [s for s in SERIES if s[1] in precisions]
    by_key = {(r['model'], r['precision'], r['threads']): r for r in rows}
    values = [v for r in rows for e in ('octet', 'ort') for v in [median_of(r, e)] if v]
    if not values:
        raise ValueError('no latencies to chart')
    scale = Scale(min(values), max(values), PANEL_H)

    group_w = len(series) * (BAR_W + BAR_GAP) - BAR_GAP
    plot_w = len(models) * (group_w + GROUP_GAP) + GROUP_GAP
    width = LEFT + plot_w + 20
    panel_total = PANEL_TOP_PAD + PANEL_H + BOTTOM_LABELS
    height = TOP_TITLE + len(threads) * panel_total + 10

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
           'font-family="DejaVu Sans, Arial, sans-serif">' % (width, height, width, height),
           '<rect width="100%" height="100%" fill="white"/>',
           text(width / 2, 22, title, size=16, weight='bold')]
    # legend
    lx = LEFT
    for engine, prec, color in series:
        out.append('<rect x="%d" y="34" width="12" height="12" fill="%s"/>' % (lx, color))
        label = '%s %s' % (ENGINE_LABEL[engine], prec)
        out.append(text(lx + 16, 44, label, size=12, anchor='start'))
        lx += 24 + 7 * len(label)
    out.append(text(width - 20, 44, 'ms, %s scale' % ('log' if scale.log else 'linear'), size=11, anchor='end',
                    fill='#555'))

    for p, t in enumerate(threads):
        top = TOP_TITLE + p * panel_total + PANEL_TOP_PAD
        base = top + PANEL_H
        out.append(text(LEFT, top - 10, '%d thread%s' % (t, '' if t == 1 else 's'), size=13, anchor='start',
                        weight='bold'))
        for v, major in scale.ticks():
            y = base - scale.y(v)
            out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" stroke-width="1"/>'
                       % (LEFT, y, LEFT + plot_w, y, '#ccc' if major else '#eee'))
            out.append(text(LEFT - 6, y + 4, fmt_ms(v), size=10, anchor='end', fill='#555'))
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>' % (LEFT, top, LEFT, base))
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>' % (LEFT, base, LEFT + plot_w, base))
        for m, model in enumerate(models):
            gx = LEFT + GROUP_GAP + m * (group_w + GROUP_GAP)
            for s, (engine, prec, color) in enumerate(series):
                x = gx + s * (BAR_W + BAR_GAP)
                row = by_key.get((model, prec, t))
                v = median_of(row, engine) if row else None
                if v is None:
                    out.append(text(x + BAR_W / 2 + 4, base - 3, 'n/a', size=9, anchor='start', rotate=-90,
                                    fill='#999'))
                    continue
                h = max(scale.y(v), 1.0)
                out.append('<rect x="%.1f" y="%.1f" width="%d" height="%.1f" fill="%s"><title>%s %s %s, %d thread(s): '
                           '%s ms</title></rect>' % (x, base - h, BAR_W, h, color, escape(model), ENGINE_LABEL[engine],
                                                     prec, t, fmt_ms(v)))
                # value above the bar, vertical so that neighbours do not overlap
                out.append(text(x + BAR_W / 2 + 4, base - h - 3, fmt_ms(v), size=9, anchor='start', rotate=-90,
                                fill='#333'))
            out.append(text(gx + group_w / 2, base + 16, model, size=11))
            # ORT/octet ratios under the model name: >1 means octet is faster
            ratios = []
            for prec in ('fp32', 'int8'):
                row = by_key.get((model, prec, t))
                a, b = (median_of(row, 'octet'), median_of(row, 'ort')) if row else (None, None)
                if a and b:
                    ratios.append('%s %.2fx' % (prec, b / a))
            for k, rt in enumerate(ratios):
                out.append(text(gx + group_w / 2, base + 31 + 13 * k, rt, size=9, fill='#555'))
        out.append(text(LEFT + plot_w, base + 62, 'under each model: ONNX Runtime / octet (above 1: octet is faster)',
                        size=9, anchor='end', fill='#777'))
    out.append('</svg>')
    with open(path, 'w') as f:
        f.write('\n'.join(out) + '\n')


def main():
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    with open(sys.argv[1]) as f:
        results = json.load(f)
    write_chart(results, sys.argv[2])
    return 0


if __name__ == '__main__':
    sys.exit(main())
