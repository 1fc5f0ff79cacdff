"""Time and memory of one long document through a trained pipeline.

    python scripts/long_document.py PIPELINE --chars 400000 --output results/long-document.json   # from benchmarks/

The document is the corpus's test text repeated up to `--chars` characters;
`nlp(text)` runs once in this process after a short warm-up. Peak memory is
the process's peak resident set (`resource`), and on a GPU torch's peak
allocation (spaCy's arrays in torch's pool, as in inference.py).
"""

import resource
import time
from pathlib import Path
from typing import Optional

import spacy
import torch
import typer

from inference import use_gpu
from run import BENCHMARKS, CORPORA, device_name, log, versions, write_json
from spacy_bioner.corpora import load_docs

app = typer.Typer(add_completion=False)


@app.command()
def main(
    pipeline: Path = typer.Argument(..., exists=True, help="A trained pipeline (a folder nlp.to_disk wrote)."),
    chars: int = typer.Option(400_000, min=1, help="Characters in the document."),
    corpus: str = typer.Option("jnlpba", help=f"Whose test text is repeated: one of {list(CORPORA)}."),
    corpus_root: Path = typer.Option(
        BENCHMARKS / "corpus", help="Converted corpora: <root>/jnlpba/test.spacy and <root>/bc5cdr-iob/test.spacy."
    ),
    gpu_id: int = typer.Option(-1, help="GPU to run on (-1: the CPU)."),
    output: Optional[Path] = typer.Option(None, help="Also write the record here as JSON."),
) -> None:
    """One document of `--chars` characters through `nlp`: wall time, peak memory, entities."""
    if corpus not in CORPORA:
        raise typer.BadParameter(f"use one of {list(CORPORA)}", param_hint="--corpus")
    if gpu_id >= 0:
        use_gpu(gpu_id)  # before the pipeline loads; torch's peak then covers spaCy's arrays too
    nlp = spacy.load(pipeline)
    loaded_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    directory, _ = CORPORA[corpus]
    text = " ".join(doc.text for doc in load_docs(corpus_root / directory / "test.spacy", nlp.vocab, 0))
    text = (text * (chars // len(text) + 1))[:chars]
    nlp(text[:2000])
    if gpu_id >= 0:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    doc = nlp(text)
    seconds = time.perf_counter() - start
    record = {
        "pipeline": str(pipeline),
        "chars": chars,
        "tokens": len(doc),
        "entities": len(doc.ents),
        "seconds": round(seconds, 1),
        # ru_maxrss is in kilobytes on Linux.
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
        "loaded_rss_gb": round(loaded_rss / 1e6, 2),
        "device": device_name(gpu_id),
        "versions": versions(),
    }
    if gpu_id >= 0:
        record["peak_gpu_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)
    log(f"{chars:,} characters, {len(doc):,} tokens, {len(doc.ents):,} entities: {seconds:.0f} s, "
        f"peak RSS {record['peak_rss_gb']} GB (loaded: {record['loaded_rss_gb']} GB)")
    if output is not None:
        write_json(output, record)
        log(f"wrote {output}")


if __name__ == "__main__":
    app()
