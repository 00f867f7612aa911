#!/usr/bin/env python3
"""One run, every figure side by side: pqrs against fastText and scikit-learn on the same split.

Driven by benches/run.sh (which builds the Rust side and the Python venv). Steps:
  1. split the labeled file once (temporal on --date/--split-date, or by --split-column) into benches/out/split.csv;
  2. peers: benches/peers/peers.py on that split (fastText, TF-IDF+LogisticRegression, TF-IDF+LinearSVC);
  3. us: `pqrs train` on the train rows (all heads, then one head), `pqrs eval` on the test rows, the `throughput`
     binary on the test texts with 1 and all threads, model size, peak RSS of train and predict (/usr/bin/time);
  4. scale: `pqrs data scale` 10k/100k/1M comments from the corpus, train (5 epochs, no refit) and score;
  5. HTTP: the load harness (benches/src/bin/load.rs) against `pqrs serve`, when it is built;
then writes benches/out/results.json, benches/RESULTS.md (unless --no-results-md) and SVG plots in benches/out/.
"""

import argparse
import csv
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")
PQRS = os.path.join(ROOT, "target", "release", "pqrs")
THROUGHPUT = os.path.join(ROOT, "target", "release", "throughput")
LOAD = os.path.join(ROOT, "target", "release", "load")
PY = os.path.join(HERE, ".venv", "bin", "python")


def log(*a):
    print("[run]", *a, file=sys.stderr, flush=True)


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time -v; returns (stdout, wall seconds, peak RSS in MB)."""
    started = time.time()
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, env=env)
    wall = time.time() - started
    if p.returncode != 0:
        raise SystemExit(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-3000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    return p.stdout, wall, (int(rss.group(1)) / 1024 if rss else None)


def split_file(args, heads):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "split.csv")
    train_path, test_path = os.path.join(OUT, "train.csv"), os.path.join(OUT, "test.csv")
    with open(args.data, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    cols = [args.text] + [c for _, c in heads] + ([args.date] if args.date else [])
    kept = []
    for r in rows:
        if not (r.get(args.text) or "").strip() or any(not (r.get(c) or "").strip() for _, c in heads):
            continue
        if args.split_date:
            d = (r.get(args.date) or "")[:10]
            try:
                datetime.date.fromisoformat(d)
            except ValueError:
                continue
            split = "test" if d >= args.split_date else "train"
        else:
            split = "test" if r.get(args.split_column) == args.test_value else "train"
        kept.append(({c: r[c] for c in cols}, split))
    for p_, which in ((path, None), (train_path, "train"), (test_path, "test")):
        with open(p_, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=cols + ["__split"])
            w.writeheader()
            for r, s in kept:
                if which is None or s == which:
                    w.writerow({**r, "__split": s})
    n_test = sum(s == "test" for _, s in kept)
    log(f"split: {len(kept) - n_test} train, {n_test} test")
    return path, train_path, test_path, len(kept) - n_test, n_test


def label_args(heads):
    out = []
    for h, c in heads:
        out += ["--label", f"{h}={c}"]
    return out


def ours(args, heads, train_path, test_path):
    model = os.path.join(OUT, "ours.pqrs")
    env = dict(os.environ)
    res = {}
    _, wall, rss = timed([PQRS, "train", "--data", train_path, "--text", args.text, *label_args(heads), "--out", model], env)
    res["train_s_all_heads"], res["train_peak_rss_mb"] = wall, rss
    one = os.path.join(OUT, "ours-one-head.pqrs")
    _, wall1, _ = timed([PQRS, "train", "--data", train_path, "--text", args.text, *label_args(heads[:1]), "--out", one], env)
    res["train_s_one_head"] = wall1
    res["model_bytes"] = os.path.getsize(model)
    eval_dir = os.path.join(OUT, "ours-eval")
    timed([PQRS, "eval", "--model", model, "--data", test_path, "--text", args.text, *label_args(heads), "--out", eval_dir], env)
    metrics = json.load(open(os.path.join(eval_dir, "metrics.json")))
    res["heads"] = {h: {k: metrics["heads"][h][k] for k in ("accuracy", "macro_f1", "weighted_f1", "ece")} for h, _ in heads}
    for threads in (1, os.cpu_count() or 2):
        e = dict(env, RAYON_NUM_THREADS=str(threads))
        out, _, rss = timed([THROUGHPUT, "--model", model, "--data", test_path, "--text", args.text, "--passes", "3"], e)
        t = json.loads(out)
        res[f"throughput_{threads}t"] = t
        res["predict_peak_rss_mb"] = rss
    return res


def scale(args):
    res = []
    for n in args.scale:
        path = os.path.join(OUT, f"scale-{n}.csv")
        if not os.path.exists(path):
            subprocess.run([PQRS, "data", "scale", "--n", str(n), "--out", path, "--seed", "7"], check=True, capture_output=True)
        model = os.path.join(OUT, f"scale-{n}.pqrs")
        _, wall, rss = timed([PQRS, "train", "--data", path, "--text", "text", "--label", "type=type", "--label", "theme=theme",
                              "--label", "area=area", "--epochs", "3", "--no-refit", "--out", model])
        out, swall, srss = timed([THROUGHPUT, "--model", model, "--data", path, "--text", "text", "--passes", "1"])
        t = json.loads(out)
        res.append({"n": n, "train_s": wall, "train_peak_rss_mb": rss, "model_bytes": os.path.getsize(model),
                    "bulk_per_s": t["bulk_all_cores_per_s"], "single_per_s": t["one_by_one_single_thread_per_s"],
                    "predict_peak_rss_mb": srss})
        log(f"scale {n}: train {wall:.1f} s, bulk {t['bulk_all_cores_per_s']:.0f}/s")
    return res


def http(args):
    if not os.path.exists(LOAD):
        return {"skipped": "benches/src/bin/load.rs is not built"}
    out = subprocess.run([LOAD, "--spawn", PQRS, "--json"], capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr[-2000:]}
    try:
        return json.loads(out.stdout)
    except json.JSONDecodeError:
        return {"raw": out.stdout[-4000:]}


def bar_svg(title, rows, unit, path):
    """Horizontal bar chart: rows = [(label, value)]."""
    width, bar_h, left = 640, 22, 230
    vmax = max((v for _, v in rows if v), default=1) or 1
    h = 40 + bar_h * len(rows) + 20
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" font-family="sans-serif" font-size="12">',
             f'<text x="8" y="20" font-size="14">{title}</text>']
    for i, (label, v) in enumerate(rows):
        y = 34 + i * bar_h
        w = (width - left - 90) * (v or 0) / vmax
        color = "#d8573b" if label.startswith("pqrs") else "#3b6fd8"
        parts.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">{label}</text>')
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{bar_h - 6}" fill="{color}"/>')
        parts.append(f'<text x="{left + w + 4:.1f}" y="{y + 15}">{v:,.4g} {unit}</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--text", required=True)
    p.add_argument("--label", action="append", required=True, metavar="HEAD=COL")
    p.add_argument("--date")
    p.add_argument("--split-date")
    p.add_argument("--split-column")
    p.add_argument("--test-value", default="test")
    p.add_argument("--scale", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--name", default=None, help="name of this data set in RESULTS.md")
    p.add_argument("--no-http", action="store_true")
    p.add_argument("--reuse-peers", metavar="JSON", help="take the peers' figures from an earlier run on the same split")
    args = p.parse_args()
    if bool(args.split_date) == bool(args.split_column):
        raise SystemExit("give either --date COL --split-date D or --split-column COL")
    heads = [tuple(l.split("=", 1)) if "=" in l else (l, l) for l in args.label]
    started = time.time()
    split_path, train_path, test_path, n_train, n_test = split_file(args, heads)

    peers_json = args.reuse_peers or os.path.join(OUT, "peers.json")
    if not args.reuse_peers:
        log("peers: fastText and scikit-learn")
        subprocess.run([PY, os.path.join(HERE, "peers", "peers.py"), "--data", split_path, "--text", args.text,
                        *label_args(heads), "--split-column", "__split", "--test-value", "test", "--out", peers_json],
                       check=True, stdout=sys.stderr)
    peers = json.load(open(peers_json))

    log("pqrs: train, eval, throughput")
    us = ours(args, heads, train_path, test_path)
    log("scale")
    sc = scale(args) if args.scale else []
    hres = {} if args.no_http else http(args)

    results = {
        "name": args.name or os.path.basename(args.data),
        "command": " ".join(sys.argv),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "cpu": peers.get("machine", {}).get("cpu_model")},
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "split": {"n_train": n_train, "n_test": n_test, "by": args.split_date or args.split_column},
        "pqrs": us, "peers": peers["results"], "scale": sc, "http": hres,
        "elapsed_s": time.time() - started,
    }
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(results, f, indent=1)

    # Tables.
    ft = {r["head"]: r for r in peers["results"] if r.get("peer") == "fasttext"}
    lines = [f"## {results['name']}", "",
             f"`{results['command']}` — {results['date']}, {results['machine']['cpus']} CPUs ({results['machine']['cpu']}), "
             f"{n_train} train / {n_test} test comments, {results['elapsed_s']:.0f} s in all.", "",
             "### Quality on the test split", "", "| head | model | accuracy | macro-F1 | weighted-F1 | ECE |", "|---|---|---:|---:|---:|---:|"]
    for h, _ in heads:
        m = us["heads"][h]
        lines.append(f"| {h} | **pqrs** | {m['accuracy']:.4f} | **{m['macro_f1']:.4f}** | {m['weighted_f1']:.4f} | {m['ece']:.3f} |")
        for r in peers["results"]:
            if r.get("head") == h and "macro_f1" in r:
                ece = r.get("ece")
                lines.append(f"| {h} | {r['peer']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {r['weighted_f1']:.4f} | "
                             f"{'' if ece is None else f'{ece:.3f}'} |")
    t1 = us["throughput_1t"]
    tn = us[f"throughput_{os.cpu_count() or 2}t"]
    ft_single = sum(r["single"]["per_s"] for r in ft.values()) / max(len(ft), 1) if ft else None
    ft_bulk = sum(r["bulk_per_s"] for r in ft.values()) / max(len(ft), 1) if ft else None
    ft_train = sum(r["train_s"] for r in ft.values()) if ft else None
    lines += ["", "### Cost", "",
              "fastText trains and predicts one head per model; its figures below are summed (training) or averaged "
              "(throughput per head) over the heads, and pqrs answers every head at once.", "",
              "| figure | pqrs | fastText | ratio |", "|---|---:|---:|---:|"]

    def row(name, ours_v, ft_v, fmt="{:,.0f}", higher_better=True):
        ratio = "" if not ft_v or not ours_v else f"{(ours_v / ft_v if higher_better else ft_v / ours_v):.2f}×"
        lines.append(f"| {name} | {fmt.format(ours_v)} | {'' if ft_v is None else fmt.format(ft_v)} | {ratio} |")

    row("training, all heads (s)", us["train_s_all_heads"], ft_train, "{:.2f}", higher_better=False)
    row("training, one head (s)", us["train_s_one_head"], min((r["train_s"] for r in ft.values()), default=None), "{:.2f}", higher_better=False)
    row("one by one, 1 thread (comments/s, all heads)", t1["one_by_one_single_thread_per_s"], ft_single)
    row("bulk, 1 thread (comments/s)", t1["bulk_all_cores_per_s"], ft_bulk)
    row(f"bulk, {tn['threads']} threads (comments/s)", tn["bulk_all_cores_per_s"], None)
    row("with explanations, 1 thread (comments/s)", t1["one_by_one_with_explanations_single_thread_per_s"], None)
    row("model size (MB)", us["model_bytes"] / 1e6, sum(r["model_bytes"] for r in ft.values()) / 1e6 if ft else None, "{:.1f}", higher_better=False)
    row("peak RSS, train (MB)", us["train_peak_rss_mb"], None, "{:.0f}")
    row("peak RSS, predict (MB)", us["predict_peak_rss_mb"], None, "{:.0f}")
    sk = [r for r in peers["results"] if r.get("peer", "").startswith("sk-") and "train_s" in r]
    if sk:
        lines += ["", "scikit-learn (per head): " + "; ".join(
            f"{r['peer']} {r['head']}: train {r['train_s']:.1f} s, bulk {r['bulk_per_s']:,.0f}/s, one by one {r['single']['per_s']:,.0f}/s"
            for r in sk)]
    if sc:
        lines += ["", "### Scale (corpus scale generator; 3 epochs, no refit; for cost only, never accuracy)", "",
                  "| comments | train (s) | train RSS (MB) | model (MB) | bulk scoring (/s) | one by one (/s) |", "|---:|---:|---:|---:|---:|---:|"]
        for s in sc:
            lines.append(f"| {s['n']:,} | {s['train_s']:.1f} | {s['train_peak_rss_mb']:.0f} | {s['model_bytes'] / 1e6:.1f} | "
                         f"{s['bulk_per_s']:,.0f} | {s['single_per_s']:,.0f} |")
    if hres:
        lines += ["", "### HTTP", "", "```", json.dumps(hres, indent=1)[:3000], "```"]
    section = "\n".join(lines) + "\n"
    with open(os.path.join(OUT, f"results-{re.sub('[^a-z0-9]+', '-', results['name'].lower())}.md"), "w") as f:
        f.write(section)

    # Plots.
    for h, _ in heads:
        rows = [("pqrs", us["heads"][h]["macro_f1"])] + [(r["peer"], r["macro_f1"]) for r in peers["results"] if r.get("head") == h and "macro_f1" in r]
        bar_svg(f"macro-F1, head {h}", rows, "", os.path.join(OUT, f"macro_f1_{h}.svg"))
    bar_svg("one-by-one throughput, 1 thread", [("pqrs (all heads)", t1["one_by_one_single_thread_per_s"])]
            + [(f"fasttext ({h})", r["single"]["per_s"]) for h, r in ft.items()], "/s", os.path.join(OUT, "throughput.svg"))
    if sc:
        bar_svg("training time by corpus size", [(f"pqrs {s['n']:,}", s["train_s"]) for s in sc], "s", os.path.join(OUT, "scale.svg"))
    print(section)


if __name__ == "__main__":
    main()
