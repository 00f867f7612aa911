#!/usr/bin/env python3
"""Side-by-side baseline for the Rust classifier: fastText and scikit-learn on the same split.

For each label head of a CSV, this trains fastText (supervised) and scikit-learn linear models
(word + character TF-IDF into LogisticRegression and LinearSVC) on one train/test split, and
reports accuracy, macro-F1, weighted-F1, ECE, training time, bulk and one-by-one prediction
throughput and model size on disk. Run it with benches/.venv/bin/python after benches/peers/setup.sh;
benches/peers/README.md has the exact commands.
"""

import argparse
import os
import sys


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Train and evaluate fastText and scikit-learn peers on one split of a CSV."
    )
    p.add_argument("--data", required=True, help="CSV file (utf-8, header row)")
    p.add_argument("--text", required=True, help="column holding the comment text")
    p.add_argument(
        "--label",
        action="append",
        required=True,
        metavar="HEAD=COL",
        help="a label head and its column; repeatable (e.g. --label type=type)",
    )
    p.add_argument("--date", help="date column for a temporal split")
    p.add_argument("--split-date", help="YYYY-MM-DD: rows dated before it are train, the rest test")
    p.add_argument("--split-column", help="column that names each row's split")
    p.add_argument("--test-value", default="test", help="value of --split-column marking test rows")
    p.add_argument("--out", required=True, help="JSON file for all figures")
    p.add_argument("--threads", type=int, default=2, help="threads for training (fastText, OpenMP)")
    p.add_argument(
        "--blas-threads",
        type=int,
        default=1,
        help="OpenBLAS/MKL threads; 1 by default because BLAS only sees small dense vectors here and its "
        "spinning threads made LogisticRegression 4-5x slower on a busy 2-core machine",
    )
    p.add_argument(
        "--autotune-model-size",
        help="fastText autotuneModelSize, e.g. 100M (quantises); unset, autotune may pick multi-GB models",
    )
    p.add_argument("--seed", type=int, default=13, help="seed for fastText, the autotune slice and sklearn")
    p.add_argument(
        "--autotune",
        action="store_true",
        help="also report fastText autotuned on a 10%% validation slice of train",
    )
    p.add_argument("--autotune-duration", type=int, default=60, help="seconds of autotune per head")
    p.add_argument(
        "--no-balanced",
        action="store_true",
        help="skip the class_weight='balanced' variants of the scikit-learn models",
    )
    p.add_argument(
        "--ft-bucket",
        type=int,
        default=200_000,
        help="fastText hash buckets for n-grams (its default, 2,000,000, makes 800 MB models at dim 100)",
    )
    p.add_argument("--ft-epoch", type=int, default=25, help="fastText epochs (the peer is renamed if not 25)")
    p.add_argument("--ft-lr", type=float, default=0.5, help="fastText learning rate (the peer is renamed if not 0.5)")
    p.add_argument(
        "--peers",
        default="fasttext,lr,svc",
        help="comma-separated subset of fasttext,lr,svc to run",
    )
    args = p.parse_args(argv)
    if args.split_column and (args.date or args.split_date):
        p.error("use either --date/--split-date or --split-column, not both")
    if not args.split_column and not (args.date and args.split_date):
        p.error("a split is needed: --date COL --split-date YYYY-MM-DD, or --split-column COL")
    if args.threads < 1 or args.blas_threads < 1:
        p.error("--threads and --blas-threads must be at least 1")
    heads = []
    for spec in args.label:
        head, sep, col = spec.partition("=")
        if not sep or not head or not col:
            p.error(f"--label expects HEAD=COL, got {spec!r}")
        if head in [h for h, _ in heads]:
            p.error(f"head {head!r} is given twice")
        heads.append((head, col))
    args.heads = heads
    args.peer_set = {s.strip() for s in args.peers.split(",") if s.strip()}
    unknown = args.peer_set - {"fasttext", "lr", "svc"}
    if unknown:
        p.error(f"unknown peers: {sorted(unknown)}")
    return args


# The thread count must reach OpenMP and BLAS before numpy or scipy load their libraries,
# so the environment is set from the raw arguments before those imports.
_ARGS = parse_args(sys.argv[1:]) if __name__ == "__main__" else None
if _ARGS is not None:
    os.environ["OMP_NUM_THREADS"] = str(_ARGS.threads)
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = str(_ARGS.blas_threads)

import csv  # noqa: E402
import datetime as dt  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import pickle  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import unicodedata  # noqa: E402
from collections import Counter  # noqa: E402
from importlib import metadata  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score  # noqa: E402
from sklearn.pipeline import FeatureUnion, Pipeline  # noqa: E402
from sklearn.svm import LinearSVC  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

FASTTEXT_PARAMS = dict(wordNgrams=2, minn=2, maxn=5, dim=100, loss="softmax", minCount=1)
LR_C = 10.0
SVC_C = 0.5
ECE_BINS = 15


# ---------------------------------------------------------------- data


_ACCENTS = str.maketrans("áàäâãéèëêíìïîóòöôõúùüûñç", "aaaaaeeeeiiiiooooouuuunc")


def normalize_label(raw):
    """Same rule as datasets::normalize_label: lower case, Spanish accents folded, spaces collapsed."""
    return " ".join(w.lower().translate(_ACCENTS) for w in raw.split())


_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%d/%m/%Y", "%d-%m-%Y", "%Y%m%d")


def parse_date(raw):
    """A date from the common spellings; a time part after a space or 'T' is ignored. None if unreadable."""
    s = raw.strip()
    if not s:
        return None
    s = re.split(r"[T ]", s, maxsplit=1)[0]
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(s, fmt).date()
        except ValueError:
            continue
    return None


def read_rows(path, text_col, heads, split_col, date_col):
    """Rows with non-empty text as dicts of the needed columns, and counts of what was dropped why."""
    needed = [text_col] + [c for _, c in heads] + [c for c in (split_col, date_col) if c]
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in needed if c not in (reader.fieldnames or [])]
        if missing:
            sys.exit(f"error: columns {missing} not in {path} (has {reader.fieldnames})")
        rows, dropped = [], Counter()
        for row in reader:
            text = (row.get(text_col) or "").strip()
            if not text:
                dropped["empty text"] += 1
                continue
            rows.append({c: (row.get(c) or "") for c in needed})
    return rows, dropped


def split_rows(rows, args, dropped):
    """(train, test) lists of rows by the requested split."""
    train, test = [], []
    if args.split_column:
        want = args.test_value.strip().lower()
        for r in rows:
            (test if r[args.split_column].strip().lower() == want else train).append(r)
        return train, test, {"kind": "column", "column": args.split_column, "test_value": args.test_value}
    cut = parse_date(args.split_date)
    if cut is None:
        sys.exit(f"error: --split-date {args.split_date!r} is not a date")
    dates = []
    for r in rows:
        d = parse_date(r[args.date])
        if d is None:
            dropped["unreadable date"] += 1
            continue
        dates.append(d)
        (train if d < cut else test).append(r)
    info = {"kind": "temporal", "column": args.date, "split_date": cut.isoformat()}
    if dates:
        info["first_date"], info["last_date"] = min(dates).isoformat(), max(dates).isoformat()
    return train, test, info


def head_data(rows, text_col, label_col):
    """Texts and normalised labels of the rows whose label is not empty."""
    texts, labels = [], []
    for r in rows:
        label = normalize_label(r[label_col])
        if label:
            texts.append(r[text_col])
            labels.append(label)
    return texts, labels


# ---------------------------------------------------------------- metrics


def ece(confidences, correct, bins=ECE_BINS):
    """Expected calibration error of the top label, equal-width bins over [0, 1]."""
    conf = np.asarray(confidences, dtype=float)
    ok = np.asarray(correct, dtype=float)
    # A confidence of exactly 1.0 belongs in the last bin, not a 16th one.
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = idx == b
        if mask.any():
            total += mask.sum() * abs(ok[mask].mean() - conf[mask].mean())
    return total / len(conf)


def scores(y_true, y_pred, confidences=None):
    out = {
        "accuracy": accuracy_score(y_true, y_pred),
        "macro_f1": f1_score(y_true, y_pred, average="macro", zero_division=0),
        "weighted_f1": f1_score(y_true, y_pred, average="weighted", zero_division=0),
        "ece": None,
    }
    if confidences is not None:
        out["ece"] = ece(confidences, [t == p for t, p in zip(y_true, y_pred)])
    return out


def one_by_one(predict_one, texts):
    """Comments per second and latency percentiles calling predict_one once per text, single thread."""
    for t in texts[:20]:
        predict_one(t)
    latencies = []
    with threadpool_limits(limits=1):
        start = time.perf_counter()
        for t in texts:
            t0 = time.perf_counter()
            predict_one(t)
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
    latencies.sort()
    q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1e6  # noqa: E731
    return {
        "per_s": len(texts) / elapsed,
        "p50_us": q(0.50),
        "p99_us": q(0.99),
        "mean_us": statistics.fmean(latencies) * 1e6,
    }


# ---------------------------------------------------------------- fastText

_FT_TOKEN = re.compile(r"\w+|[^\w\s]")


def ft_text(raw):
    """fastText input: lower case, one line, punctuation split from words."""
    return " ".join(_FT_TOKEN.findall(raw.lower()))


def ft_label(label):
    return "__label__" + label.replace(" ", "_")


def write_ft_file(path, texts, labels):
    with open(path, "w", encoding="utf-8") as f:
        for t, l in zip(texts, labels):
            f.write(f"{ft_label(l)} {ft_text(t)}\n")


def run_fasttext(name, train, test, args, workdir, autotune=False):
    import fasttext

    back = {ft_label(l): l for l in set(train[1]) | set(test[1])}
    train_file = os.path.join(workdir, f"{name}.train.txt")
    params = dict(FASTTEXT_PARAMS, bucket=args.ft_bucket, epoch=args.ft_epoch, lr=args.ft_lr)
    extra = {}
    if autotune:
        # A seeded 10 % of train validates the search; fastText then trains on the other 90 %.
        idx = list(range(len(train[0])))
        random.Random(args.seed).shuffle(idx)
        n_val = max(1, len(idx) // 10)
        val_idx = set(idx[:n_val])
        fit_idx = [i for i in idx if i not in val_idx]
        val_file = os.path.join(workdir, f"{name}.valid.txt")
        write_ft_file(val_file, [train[0][i] for i in sorted(val_idx)], [train[1][i] for i in sorted(val_idx)])
        write_ft_file(train_file, [train[0][i] for i in fit_idx], [train[1][i] for i in fit_idx])
        params = dict(autotuneValidationFile=val_file, autotuneDuration=args.autotune_duration)
        if args.autotune_model_size:
            params["autotuneModelSize"] = args.autotune_model_size
        extra = {"n_fit": len(fit_idx), "n_validation": len(val_idx)}
    else:
        # fastText's SGD reads the file in order with a decaying learning rate, so a file grouped by label
        # (as the corpus is) leaves it fitting mostly the last labels; a seeded shuffle avoids that.
        order = list(range(len(train[0])))
        random.Random(args.seed).shuffle(order)
        write_ft_file(train_file, [train[0][i] for i in order], [train[1][i] for i in order])

    # Lock-free multi-threaded SGD at lr 0.5 diverged ("Encountered NaN") once on the buzón sector head,
    # depending on thread timing; the fixed configuration gets two more tries, counted in `nan_retries`.
    # Autotune is not retried: each try costs its whole duration.
    tries = 1 if autotune else 3
    for attempt in range(tries):
        try:
            t0 = time.perf_counter()
            model = fasttext.train_supervised(
                input=train_file, thread=args.threads, seed=args.seed + attempt, verbose=0, **params
            )
            train_s = time.perf_counter() - t0
            break
        except RuntimeError:
            if attempt + 1 == tries:
                raise
    extra["nan_retries"] = attempt
    if autotune:
        a = model.f.getArgs()
        extra["chosen"] = {
            k: getattr(a, k)
            for k in ("lr", "epoch", "dim", "wordNgrams", "minn", "maxn", "bucket", "dsub", "loss")
            if hasattr(a, k)
        }
        extra["chosen"]["loss"] = str(extra["chosen"].get("loss"))
        extra["quantized"] = model.is_quantized()

    texts = test[0]
    # Preprocessing is part of the timed bulk call, as tokenisation is inside the scikit-learn pipelines.
    t0 = time.perf_counter()
    labels, probs = model.predict([ft_text(t) for t in texts], k=1)
    bulk_s = time.perf_counter() - t0
    y_pred = [back.get(l[0], l[0][len("__label__"):]) if l else "" for l in labels]
    conf = [float(min(1.0, p[0])) if len(p) else 0.0 for p in probs]

    # Accuracy on the training texts tells underfitting (a config too weak for the data) from overfitting.
    train_labels, _ = model.predict([ft_text(t) for t in train[0]], k=1)
    extra["train_accuracy"] = accuracy_score(train[1], [back.get(l[0], "") if l else "" for l in train_labels])

    single = one_by_one(lambda t: model.predict(ft_text(t), k=1), texts)
    path = os.path.join(workdir, f"{name}.bin")
    model.save_model(path)
    size = os.path.getsize(path)
    os.remove(path)
    params_out = {k: v for k, v in params.items() if k != "autotuneValidationFile"}
    return dict(
        scores(test[1], y_pred, conf),
        train_s=train_s,
        bulk_per_s=len(texts) / bulk_s,
        single=single,
        model_bytes=size,
        params=params_out,
        **extra,
    )


# ---------------------------------------------------------------- scikit-learn


def features():
    return FeatureUnion(
        [
            ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, min_df=1)),
            ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
        ]
    )


def sk_model(kind, balanced, seed):
    weight = "balanced" if balanced else None
    if kind == "lr":
        return LogisticRegression(C=LR_C, max_iter=2000, solver="lbfgs", class_weight=weight, random_state=seed)
    return LinearSVC(C=SVC_C, class_weight=weight, random_state=seed)


def run_sklearn(kind, balanced, train, test, args, workdir):
    pipe = Pipeline([("features", features()), ("clf", sk_model(kind, balanced, args.seed))])
    t0 = time.perf_counter()
    pipe.fit(train[0], train[1])
    train_s = time.perf_counter() - t0
    clf = pipe.named_steps["clf"]
    extra = {"n_features": int(len(clf.coef_[0]))}
    if kind == "lr":
        extra["n_iter"] = int(np.max(clf.n_iter_))
    extra["train_accuracy"] = accuracy_score(train[1], pipe.predict(train[0]))

    texts = test[0]
    t0 = time.perf_counter()
    if kind == "lr":
        proba = pipe.predict_proba(texts)
        bulk_s = time.perf_counter() - t0
        best = proba.argmax(axis=1)
        y_pred = [clf.classes_[i] for i in best]
        conf = proba[np.arange(len(best)), best]
        single = one_by_one(lambda t: pipe.predict_proba([t]), texts)
    else:
        y_pred = list(pipe.predict(texts))
        bulk_s = time.perf_counter() - t0
        conf = None
        single = one_by_one(lambda t: pipe.predict([t]), texts)

    path = os.path.join(workdir, "model.pkl")
    with open(path, "wb") as f:
        pickle.dump(pipe, f, protocol=pickle.HIGHEST_PROTOCOL)
    size = os.path.getsize(path)
    os.remove(path)
    params = {"C": LR_C if kind == "lr" else SVC_C, "class_weight": "balanced" if balanced else None}
    if kind == "lr":
        params.update(solver="lbfgs", max_iter=2000)
    return dict(
        scores(test[1], y_pred, conf),
        train_s=train_s,
        bulk_per_s=len(texts) / bulk_s,
        single=single,
        model_bytes=size,
        params=params,
        **extra,
    )


# ---------------------------------------------------------------- report


def version(dist):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine(threads, blas_threads):
    cpu_model = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model,
        "threads": threads,
        "blas_threads": blas_threads,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            "fasttext-numpy2": version("fasttext-numpy2"),
            "scikit-learn": version("scikit-learn"),
            "numpy": version("numpy"),
            "scipy": version("scipy"),
        },
        "blas": [
            {k: lib.get(k) for k in ("internal_api", "num_threads", "version", "architecture")}
            for lib in threadpool_info()
        ],
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if os.environ.get(k)},
    }


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def print_table(results):
    cols = f"{'head':<10} {'peer':<15} {'n_tr':>6} {'n_te':>5} {'tr_acc':>6} {'acc':>6} {'macroF1':>7} {'wF1':>6} {'ECE':>6} " \
        f"{'train_s':>8} {'bulk/s':>9} {'1by1/s':>8} {'p50_us':>7} {'size':>9}"
    print(cols)
    print("-" * len(cols))
    for r in results:
        if "error" in r:
            print(f"{r['head']:<10} {r['peer']:<15} {r['n_train']:>6} {r['n_test']:>5}  failed: {r['error']}")
            continue
        ece_s = f"{r['ece']:.3f}" if r["ece"] is not None else "-"
        size = r["model_bytes"]
        size_s = f"{size / 1e6:.1f}MB" if size >= 1e5 else f"{size / 1e3:.0f}kB"
        print(
            f"{r['head']:<10} {r['peer']:<15} {r['n_train']:>6} {r['n_test']:>5} {r['train_accuracy']:>6.3f} "
            f"{r['accuracy']:>6.3f} "
            f"{r['macro_f1']:>7.3f} {r['weighted_f1']:>6.3f} {ece_s:>6} {r['train_s']:>8.1f} "
            f"{r['bulk_per_s']:>9.0f} {r['single']['per_s']:>8.0f} {r['single']['p50_us']:>7.0f} {size_s:>9}"
        )


def main(args):
    started = time.time()
    rows, dropped = read_rows(args.data, args.text, args.heads, args.split_column, args.date)
    train_rows, test_rows, split = split_rows(rows, args, dropped)
    if not train_rows or not test_rows:
        sys.exit(f"error: empty split (train {len(train_rows)}, test {len(test_rows)})")
    split.update(n_train_rows=len(train_rows), n_test_rows=len(test_rows))
    report = {
        "data": {
            "path": os.path.abspath(args.data),
            "sha256": sha256(args.data),
            "rows_used": len(rows),
            "dropped": dict(dropped),
            "text": args.text,
            "heads": dict(args.heads),
        },
        "split": split,
        "machine": machine(args.threads, args.blas_threads),
        "settings": {
            "seed": args.seed,
            "fasttext": dict(FASTTEXT_PARAMS, bucket=args.ft_bucket, epoch=args.ft_epoch, lr=args.ft_lr),
            "fasttext_train_order": "seeded shuffle",
            "fasttext_preprocessing": "lower-case, one line, punctuation split from words; timed with prediction",
            "sklearn_features": "FeatureUnion(TfidfVectorizer(word, 1-2, sublinear_tf, min_df=1), "
            "TfidfVectorizer(char_wb, 2-5, sublinear_tf))",
            "labels": "lower-case, accents folded, spaces collapsed (as datasets::normalize_label)",
            "macro_f1": "unweighted mean of per-label F1 over labels in test truth or predictions "
            "(scikit-learn average='macro', zero_division=0)",
            "ece": f"top-label confidence, {ECE_BINS} equal-width bins",
            "one_by_one": "one predict call per test comment, thread pools limited to 1",
        },
        "results": [],
    }
    print(
        f"{args.data}: {len(rows)} rows, train {len(train_rows)}, test {len(test_rows)} ({split['kind']} split); "
        f"threads {args.threads}",
        flush=True,
    )

    plan = []
    if "fasttext" in args.peer_set:
        ft_name = "fasttext" if (args.ft_epoch, args.ft_lr) == (25, 0.5) else f"ft-e{args.ft_epoch}-lr{args.ft_lr:g}"
        plan.append((ft_name, lambda n, tr, te, wd: run_fasttext(n, tr, te, args, wd)))
        if args.autotune:
            plan.append(("fasttext-auto", lambda n, tr, te, wd: run_fasttext(n, tr, te, args, wd, autotune=True)))
    for kind in ("lr", "svc"):
        if kind in args.peer_set:
            plan.append((f"sk-{kind}", lambda n, tr, te, wd, k=kind: run_sklearn(k, False, tr, te, args, wd)))
            if not args.no_balanced:
                plan.append(
                    (f"sk-{kind}-bal", lambda n, tr, te, wd, k=kind: run_sklearn(k, True, tr, te, args, wd))
                )

    with tempfile.TemporaryDirectory(prefix="peers-") as workdir:
        for head, col in args.heads:
            train = head_data(train_rows, args.text, col)
            test = head_data(test_rows, args.text, col)
            train_counts, test_counts = Counter(train[1]), Counter(test[1])
            unseen = sorted(set(test_counts) - set(train_counts))
            for peer, run in plan:
                t0 = time.perf_counter()
                try:
                    res = run(f"{head}-{peer}", train, test, workdir)
                except RuntimeError as err:
                    # fastText raises RuntimeError("Encountered NaN.") when a learning rate diverges, which
                    # autotune's final retraining can do; the other peers and heads still deserve a result.
                    res = {"error": str(err)}
                res = dict(
                    head=head,
                    column=col,
                    peer=peer,
                    n_train=len(train[0]),
                    n_test=len(test[0]),
                    n_labels=len(train_counts),
                    labels_train=dict(train_counts.most_common()),
                    labels_test=dict(test_counts.most_common()),
                    test_labels_unseen_in_train=unseen,
                    wall_s=time.perf_counter() - t0,
                    **res,
                )
                report["results"].append(res)
                if "error" in res:
                    print(f"  {head:<10} {peer:<15} failed: {res['error']}", flush=True)
                else:
                    print(
                        f"  {head:<10} {peer:<15} acc {res['accuracy']:.3f}  macro-F1 {res['macro_f1']:.3f}  "
                        f"train {res['train_s']:.1f}s",
                        flush=True,
                    )
                # Written after each result so a long run that is stopped still leaves its figures.
                report["elapsed_s"] = time.time() - started
                with open(args.out, "w", encoding="utf-8") as f:
                    json.dump(report, f, indent=2, ensure_ascii=False)

    print()
    print_table(report["results"])
    print(f"\nwrote {args.out} in {time.time() - started:.0f}s")


if __name__ == "__main__":
    main(_ARGS)
