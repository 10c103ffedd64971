"""Charts of the NET benchmark (net.py): one PNG per case, drawn by gnuplot (Debian's
gnuplot-nox, pngcairo). Each bar is a median with its min-max as an error bar and the
figure (and its ratio to the case's reference) written above it; dashed lines mark a
link's rate or a goal. The gnuplot script is kept beside each PNG."""

import os
import subprocess

COLORS = {"direct": "#8c8c8c", "cold": "#4f81bd", "warm": "#e8853d", "prestaged": "#70ad47",
          "1+2": "#9b59b6"}


def color(who):
    for k, c in COLORS.items():
        if k in who:
            return c
    return "#4f81bd"


def q(s):
    """s as a gnuplot double-quoted string (where \\n is a line break)."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def bars(R, case, metric, whos, fmtv, ref=None, labels=None):
    """[(xtic label, median, min, max, text above, colour)] of the rows that exist."""
    out = []
    refv = R.med(case, metric, ref) if ref else None
    for who in whos:
        v = R.get(case, metric, who)
        if not v:
            continue
        m = R.med(case, metric, who)
        text = fmtv(m) + (f"\n{m / refv:.2f}x" if refv and who != ref else "")
        out.append(((labels or {}).get(who, who), m, min(v), max(v), text, color(who)))
    return out


def panel(title, ylabel, data, hlines=()):
    """gnuplot commands for one bar panel."""
    n = len(data)
    top = max([d[3] for d in data] + [y for y, _ in hlines] + [1e-9]) * 1.3
    g = [f"set title {q(title)}", f"set ylabel {q(ylabel)}", f"set xrange [-0.6:{n - 0.4}]",
         f"set yrange [0:{top:.6g}]", "unset label",
         "set xtics nomirror (" + ", ".join(f"{q(d[0])} {i}" for i, d in enumerate(data)) + ")"]
    for i, d in enumerate(data):
        lift = 0.9 + 0.6 * (d[4].count("\n") + 1)  # a label is centred on its anchor
        g.append(f"set label {i + 1} {q(d[4])} at {i},{d[3]:.6g} center offset 0,{lift:.1f}")
    rows = "\n".join(f"{i} {d[1]:.6g} {d[2]:.6g} {d[3]:.6g} 0x{d[5][1:]}"
                     for i, d in enumerate(data))
    g.append(f"$d{id(data)} << EOD\n{rows}\nEOD")
    plots = [f"$d{id(data)} using 1:2:(0.6):5 with boxes lc rgb variable notitle",
             f"$d{id(data)} using 1:3:(0):($4-$3) with vectors nohead lc rgb 'black' lw 1.5 "
             "notitle"]
    for (y, label), c in zip(hlines, ("#2c3e50", "#c0392b", "#16a085")):
        plots.append(f"{y:.6g} with lines dt 2 lw 2 lc rgb '{c}' title {q(label)}")
    g.append("plot " + ", \\\n     ".join(plots))
    return g


def draw(path, panels, size=(900, 560)):
    """panels: [(title, ylabel, data, hlines)], side by side."""
    if not any(p[2] for p in panels):
        return None
    g = [f"set terminal pngcairo size {size[0] * len(panels)},{size[1]} font 'DejaVu Sans,11'",
         f"set output {q(path)}", "set style fill solid 0.85 border -1", "set grid ytics",
         "set key top left", "set boxwidth 0.6", "set bmargin 4"]
    if len(panels) > 1:
        g.append(f"set multiplot layout 1,{len(panels)}")
    for p in panels:
        if p[2]:
            g += panel(*p)
    if len(panels) > 1:
        g.append("unset multiplot")
    script = os.path.splitext(path)[0] + ".gp"
    with open(script, "w") as f:
        f.write("\n".join(g) + "\n")
    p = subprocess.run(["gnuplot", script], capture_output=True, text=True, timeout=60)
    if p.returncode:
        raise RuntimeError(f"gnuplot {script}: {p.stderr}")
    return path


def mbs(v):
    return f"{v:.0f} MB/s"


def secs(v):
    return f"{v:.2f} s"


def ms(v):
    return f"{v:.0f} ms"


SHORT = {"1": "boto3", "2": "aws-cli", "3": "crt", "4": "prestage", "5": "fan-out",
         "6": "model"}


def draw_all(b, d, k):
    """Every chart of bench b into directory d; k: the rig's constants (net.CONSTS)."""
    R, out, WE = b.res, [], k["who_epoch"]
    for i, kind in enumerate(k["clients"]):
        c = f"{i + 1} epochs, {kind}"
        data = bars(R, c, "throughput", k["who_epoch"], mbs, ref="direct")
        goal = 3 * R.med(c, "throughput", "direct")
        out.append(draw(os.path.join(d, f"{i + 1}-epochs-{kind}.png"), [
            (f"{kind}: {b.plan.shards} shards read on n1, the origin {k['rtt_ms']} ms away",
             "MB/s", data,
             [(k["origin_rate"] / 1e6, f"origin link, {k['origin_rate'] / 1e6:.0f} MB/s"),
              (goal, "goal: warm 3x direct")])]))
    c = "4 prestaged epoch 1, boto3"
    whos = ("epoch 1, cold", "epoch 1, prestaged")
    lab = {w: w.split(", ")[1] for w in whos}
    out.append(draw(os.path.join(d, "4-prestage.png"), [
        ("epoch 1, first read to last byte", "s",
         bars(R, c, "epoch time (first read to last byte)", whos, secs, whos[0], lab), []),
        (f"job: launch to last byte (first read {b.plan.job_start:.0f} s after launch)", "s",
         bars(R, c, "job time (launch to last byte)", whos, secs, whos[0], lab), [])]))
    c = "5 hot object fan-out, 3 nodes"
    out.append(draw(os.path.join(d, "5-fanout.png"), [
        (f"3 nodes read one {b.model_size / 1e9:.2f} GB object at once", "aggregate MB/s",
         bars(R, c, "aggregate throughput", ("cold", "warm"), mbs),
         [(k["link_rate"] / 1e6, f"one node link, {k['link_rate'] / 1e6:.0f} MB/s"),
          (2.5 * k["link_rate"] / 1e6, "goal: 2.5x one link")])]))
    c = "6 model load (safetensors), boto3"
    whos = ("direct", "cold", "warm")
    out.append(draw(os.path.join(d, "6-model-load.png"), [
        ("model load: the 8-byte length answered", "ms",
         bars(R, c, "first byte (8-byte length)", whos, ms, "direct"), []),
        ("model load: every tensor read", "s", bars(R, c, "total load", whos, secs, "direct"),
         [])]))
    data = []
    for case, metric, who, unit, vals in R.rows:
        if metric == "origin bytes per byte read" and case[0] in "123456":
            w = {"direct": "direct", WE[1]: "e1", WE[2]: "e2", "epochs 1+2": "e1+2"}.get(
                who, who.replace("epoch 1, ", ""))
            data.append((f"{SHORT[case[0]]}\n{w}", *stats(vals),
                         f"{stats(vals)[0]:.2f}", color(who)))
    out.append(draw(os.path.join(d, "7-origin-bytes.png"), [
        ("origin body bytes per byte the clients read", "x", data, [(1.02, "goal: 1.02")])],
        size=(max(900, 80 * len(data)), 560)))
    return [p for p in out if p]


def stats(vals):
    s = sorted(vals)
    return s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2, s[0], s[-1]


def main():
    """Draws the charts again from a results directory (results.csv and meta.json)."""
    import csv
    import json
    import sys
    import types

    from run import Results

    d = sys.argv[1]
    R = Results()
    with open(os.path.join(d, "results.csv")) as f:
        for row in list(csv.reader(f))[1:]:
            for v in row[8].split():
                R.add(row[0], row[1], row[2], row[3], float(v))
    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)
    b = types.SimpleNamespace(res=R, model_size=meta["model_size"],
                              plan=types.SimpleNamespace(**meta["plan"]))
    for p in draw_all(b, d, meta["consts"]):
        print(p)


if __name__ == "__main__":
    main()
