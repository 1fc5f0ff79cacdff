"""Where `nlp.pipe`'s time goes: each component's share of tagging raw text,
with the encoder's own forward pass apart from the host work around it.

    HF_HUB_OFFLINE=1 python scripts/pipe_profile.py --model training/model-best --corpus-root corpus   # from benchmarks/
    HF_HUB_OFFLINE=1 python scripts/pipe_profile.py --model training/model-best --gpu-id 0

On a GPU the encoder is fast, and what the pipeline does per word on the host
(spaCy's tokenizer; cutting windows and wordpieces; turning tags into spans,
bounds and doc.ents; the abbreviation step) bounds words/s however fast the
encoder gets: `words_per_second_bound` is 10^6 over the microseconds a word
spends outside the encoder. That time includes the heads' mathematics: on
the CPU all of it, on a GPU their kernels' time as well as their launches
and copies (each component is timed to a synchronisation).

The texts are `inference.py`'s (the first `--n-docs` test documents of each
corpus, whitespace words). For each batch size, `--repeats` times: spaCy's
tokenizer over every text, then each component in pipeline order over every
document: one with a `pipe` method through it at the batch size, timed start
to end (synchronised on a GPU); a run of components without one document by
document, each call timed, as `nlp.pipe` hands them each document in turn.
The components with `pipe` take all documents one after another rather than
batch by batch as in `nlp.pipe`: the same work, so the shares hold
(`pipe_words_per_second`, timed by `nlp.pipe` itself, is beside them). The
transformer component's time is split by torch hooks on the Hugging Face
module (`step_profile.EncoderClock`) into `encoder` (its forward passes) and
`transformer` (the rest): the pipeline needs its shared `transformer`
component (not heads whose listeners were replaced by copies). Each part's
median over the repeats, in microseconds per word; results to
results/<date>-<cpu|gpu>-pipe-profile[-<tag>].json.
"""

import datetime
import os
import shlex
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List

import spacy
import torch
import typer
from spacy.language import Language

from hf_token_classification import INFERENCE_BATCH_SIZES
from inference import (
    BatchSizesOption,
    CorpusRootOption,
    ModelOption,
    NDocsOption,
    load_texts,
    spacy_words_per_second,
    synchronize,
    use_gpu,
)
from run import BENCHMARKS, host_description, log, versions, write_results
from step_profile import EncoderClock, hf_module

ENCODER = "encoder"
TOKENIZER = "tokenizer"
# Settings of the environment that change these timings, recorded where set:
# threads, and NumPy's advice to the kernel to back large arrays with huge
# pages (on a kernel that compacts memory for them, a first large array can stall).
TIMING_ENVIRONMENT = ("OMP_NUM_THREADS", "TOKENIZERS_PARALLELISM", "NUMPY_MADVISE_HUGEPAGE")

app = typer.Typer(add_completion=False)


def component_seconds(nlp: Language, texts: List[str], batch_size: int, gpu_id: int) -> Dict[str, float]:
    """Seconds of the tokenizer, the encoder and each component over `texts`."""
    seconds: Dict[str, float] = defaultdict(float)
    start = time.perf_counter()
    docs = [nlp.make_doc(text) for text in texts]
    seconds[TOKENIZER] = time.perf_counter() - start
    names = list(nlp.pipe_names)
    with EncoderClock(hf_module(nlp)) as clock:
        while names:
            component = nlp.get_pipe(names[0])
            if hasattr(component, "pipe"):
                name = names.pop(0)
                clock.clear()
                synchronize(gpu_id)
                start = time.perf_counter()
                docs = list(component.pipe(docs, batch_size=batch_size))
                synchronize(gpu_id)
                seconds[name] += time.perf_counter() - start
                encoder = sum(end - begin for begin, end in zip(clock.forward_starts, clock.forward_ends))
                if encoder:
                    seconds[ENCODER] += encoder
                    seconds[name] -= encoder
                continue
            # Components without `pipe` take one document after another in
            # `nlp.pipe`, each the document the one before it has just done.
            run = []
            while names and not hasattr(nlp.get_pipe(names[0]), "pipe"):
                run.append((names[0], nlp.get_pipe(names.pop(0))))
            for i, doc in enumerate(docs):
                for name, component in run:
                    start = time.perf_counter()
                    doc = component(doc)
                    seconds[name] += time.perf_counter() - start
                docs[i] = doc
    return dict(seconds)


def markdown_table(records: List[Dict[str, Any]]) -> str:
    parts = list(records[0]["us_per_word"])
    lines = [
        f"Model `{records[0]['model']}`; {records[0]['device']}; {records[0]['docs']} documents, "
        f"{records[0]['words']:,} words; medians of {records[0]['repeats']}; microseconds per word.",
        "",
        "| batch | " + " | ".join(parts) + " | outside the encoder | words/s bound | nlp.pipe words/s |",
        "| ---: |" + " ---: |" * (len(parts) + 3),
    ]
    for r in records:
        cells = [f"{r['us_per_word'][part]:.1f}" for part in parts]
        lines.append(
            f"| {r['batch_size']} | " + " | ".join(cells)
            + f" | **{r['outside_encoder_us_per_word']:.1f}** | {r['words_per_second_bound']:,} | {r['pipe_words_per_second']:,} |"
        )
    return "\n".join(lines) + "\n"


@app.command()
def main(
    model: ModelOption = "en_bioner_scibert",
    corpus_root: CorpusRootOption = BENCHMARKS / "corpus",
    n_docs: NDocsOption = 100,
    batch_sizes: BatchSizesOption = list(INFERENCE_BATCH_SIZES),
    repeats: int = typer.Option(3, min=1, help="Timings per batch size; medians are reported."),
    output_dir: Path = typer.Option(BENCHMARKS / "results", help="Where the JSON records go."),
    tag: str = typer.Option("", help="Suffix for the output file name."),
    gpu_id: int = typer.Option(-1, help="GPU to run on (-1: the CPU)."),
) -> None:
    """Time each component of `nlp.pipe` on raw texts, the encoder's forward apart."""
    gpu_name = use_gpu(gpu_id) if gpu_id >= 0 else ""  # before the pipeline loads
    nlp = spacy.load(model)
    if "transformer" not in nlp.pipe_names:
        raise typer.BadParameter(
            f"{model} has no shared 'transformer' component (its pipes: {', '.join(nlp.pipe_names)}); "
            "the encoder's forward passes are timed on that one",
            param_hint="--model",
        )
    texts = load_texts(corpus_root, n_docs)
    n_words = sum(len(text.split()) for text in texts)
    device = f"{gpu_name} (cuda:{gpu_id}), host {host_description()}" if gpu_name else host_description()
    log(f"{len(texts)} texts, {n_words:,} words; {torch.get_num_threads()} torch threads; {device}")
    records = []
    for batch_size in batch_sizes:
        for _ in nlp.pipe(texts[:batch_size], batch_size=batch_size):  # warm-up
            pass
        runs = [component_seconds(nlp, texts, batch_size, gpu_id) for _ in range(repeats)]
        us_per_word = {part: round(1e6 * statistics.median(r[part] for r in runs) / n_words, 2) for part in runs[0]}
        outside = sum(value for part, value in us_per_word.items() if part != ENCODER)
        record = {
            "model": model,
            "batch_size": batch_size,
            "docs": len(texts),
            "words": n_words,
            "repeats": repeats,
            "us_per_word": us_per_word,
            "outside_encoder_us_per_word": round(outside, 2),
            "words_per_second_bound": round(1e6 / outside),
            "pipe_words_per_second": round(spacy_words_per_second(nlp, texts, batch_size, gpu_id)),
            "device": device,
            "threads": torch.get_num_threads(),
            "environment": {name: os.environ[name] for name in TIMING_ENVIRONMENT if name in os.environ},
            "command": shlex.join(["python", *sys.argv]),
            "versions": versions(),
        }
        log(f"batch {batch_size}: outside the encoder {outside:.1f} us/word, nlp.pipe {record['pipe_words_per_second']:,} words/s")
        records.append(record)
    stem = f"{datetime.date.today().isoformat()}-{'cpu' if gpu_id < 0 else 'gpu'}-pipe-profile{'-' + tag if tag else ''}"
    write_results(records, output_dir, stem)
    print(markdown_table(records))
    log(f"wrote {output_dir / stem}.json")


if __name__ == "__main__":
    app()
