"""Inference speed: a spaCy pipeline's `nlp.pipe` against the Hugging Face
`pipeline("ner")` on the same encoder, in one process, on the CPU or a GPU.

    HF_HUB_OFFLINE=1 python scripts/inference.py --model en_bioner_scibert              # from benchmarks/
    HF_HUB_OFFLINE=1 python scripts/inference.py --model en_bioner_scibert --gpu-id 0   # both on GPU 0

Both systems read the same raw texts, the first N test documents of JNLPBA
and BC5CDR (IOB form, regrouped into abstracts), and are credited with the same
number of words (whitespace-separated). The Hugging Face side is
`AutoModelForTokenClassification` on the pipeline's own transformer (its
fine-tuned weights and tokenizer, unless `--encoder` names another one) with
one classification head over all the IOB tags the spaCy heads predict. That
head is untrained: inference speed does not depend on its weights, so its
entities are meaningless and only the timings count.

By default both systems run on the CPU with torch's default number of threads.
With `--precision bfloat16` both run their encoder under bfloat16 autocast:
the spaCy pipeline loaded with that precision (`spacy_bioner.loading`), the
Hugging Face pipeline's calls inside `torch.autocast`. By default both run
at the spaCy pipeline's own precision (float16 too, for one trained in it).
With `--gpu-id N` both run on GPU N: spaCy through `spacy.require_gpu` (thinc's
CuPy memory served by PyTorch's allocator, as in training), the Hugging Face
model in fp32 on `cuda:N`; the device is synchronised before every clock
reading, and each record gets the peak GPU memory allocated during its
system's timings (both models' weights stay resident throughout). Every
timing is preceded by a warm-up batch. The systems take turns going first from
one batch size (and repeat) to the next, so that neither is always measured on
a warmer machine. Results go to
benchmarks/results/<date>-<cpu|gpu>-inference[-<tag>].json (a list of
records); the table is printed.
"""

import contextlib
import datetime
import statistics
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, Dict, List, Optional, Tuple

import spacy
import torch
import typer
from spacy.language import Language
from thinc.api import set_gpu_allocator
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    set_seed,
)

from hf_token_classification import INFERENCE_BATCH_SIZES, pipeline_words_per_second
from run import BENCHMARKS, CORPORA, DEFAULT_ENCODER, host_description, log, require_gpu, versions, write_results
from spacy_bioner.corpora import load_docs
from spacy_bioner.encoders import resolve_encoder
from spacy_bioner.evaluation import head_keys
from spacy_bioner.loading import LOAD_PRECISIONS, PipelineLoadError, encoder_precision, load_pipeline
from spacy_bioner.packaging import ENCODER_META_KEY, describe_encoder, encoder_name

SYSTEMS = ("spacy_bioner", "hf_pipeline_ner")
HF_HEAD_NOTE = "untrained classification head: speed only, its predictions are meaningless"

app = typer.Typer(add_completion=False)


# The options of the scripts that time `load_texts`' texts (this one and pipe_profile.py).
ModelOption = Annotated[str, typer.Option(help="spaCy pipeline: an installed package name or a directory.")]
CorpusRootOption = Annotated[
    Path, typer.Option(help="Converted corpora: <root>/jnlpba/test.spacy and <root>/bc5cdr-iob/test.spacy.")
]
NDocsOption = Annotated[int, typer.Option(help="Test documents per corpus (0: all).")]
BatchSizesOption = Annotated[List[int], typer.Option("--batch-size", help="Repeatable.")]


def load_texts(corpus_root: Path, n_docs: int) -> List[str]:
    """The raw text of the first `n_docs` test documents of each corpus (0: all)."""
    vocab = spacy.blank("en").vocab
    return [
        doc.text
        for directory, _ in CORPORA.values()
        for doc in load_docs(corpus_root / directory / "test.spacy", vocab, n_docs)
    ]


def head_tags(nlp: Language) -> List[str]:
    """The IOB tags the pipeline's bio_ner heads predict, "O" counted once."""
    tags = [tag for name in head_keys(nlp).values() for tag in nlp.get_pipe(name).tags]
    if not tags:
        raise typer.BadParameter(f"the pipeline has no bio_ner heads: {nlp.pipe_names}")
    return list(dict.fromkeys(tags))


def hf_token_classifier(source: str, tags: List[str]) -> Tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """`AutoModelForTokenClassification` with a fresh head over `tags`, and its tokenizer."""
    set_seed(0)  # the head is random: the same one every run
    model = AutoModelForTokenClassification.from_pretrained(
        source, num_labels=len(tags), id2label=dict(enumerate(tags)), label2id={t: i for i, t in enumerate(tags)}
    ).float()  # fp32 like the spaCy pipeline (transformers 5 keeps a checkpoint's own dtype)
    tokenizer = AutoTokenizer.from_pretrained(source)
    # Some tokenizers (SciBERT's) declare no maximum length: the pipeline would
    # then pass a long text whole and the position embeddings would overflow.
    positions = getattr(model.config, "max_position_embeddings", tokenizer.model_max_length)
    tokenizer.model_max_length = min(tokenizer.model_max_length, positions)
    return model.eval(), tokenizer


def pipeline_token_classifier(nlp: Language, tags: List[str]) -> Tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """`hf_token_classifier` on the spaCy pipeline's own transformer: same weights, same tokenizer."""
    if "transformer" not in nlp.pipe_names:
        raise typer.BadParameter("the pipeline has no `transformer` component: pass --encoder")
    transformer = nlp.get_pipe("transformer").model
    with tempfile.TemporaryDirectory() as exported:
        transformer.transformer.save_pretrained(exported)
        transformer.tokenizer.save_pretrained(exported)
        return hf_token_classifier(exported, tags)


def hf_stride(tokenizer: PreTrainedTokenizerBase) -> int:
    """Overlap between the chunks of a text longer than the encoder's limit.

    Without a stride, `pipeline("ner")` truncates such a text at
    `model_max_length` pieces and returns no entity past the cut; with one, it
    reads the whole text in overlapping chunks and merges their entities. A
    quarter of the chunk, the same share as the spaCy config's strided windows
    (128 tokens, 32 shared). Texts that fit are read in one chunk either way.
    """
    return tokenizer.model_max_length // 4


def synchronize(gpu_id: int) -> None:
    """Wait for the GPU's queued work (nothing on the CPU), so that clock readings are honest."""
    if gpu_id >= 0:
        torch.cuda.synchronize(gpu_id)


def spacy_words_per_second(nlp: Language, texts: List[str], batch_size: int, gpu_id: int = -1) -> float:
    """Whitespace words per second of `nlp.pipe` on raw texts, after a warm-up batch."""
    for _ in nlp.pipe(texts[:batch_size], batch_size=batch_size):
        pass
    synchronize(gpu_id)
    start = time.perf_counter()
    for _ in nlp.pipe(texts, batch_size=batch_size):
        pass
    synchronize(gpu_id)
    return sum(len(text.split()) for text in texts) / (time.perf_counter() - start)


def use_gpu(gpu_id: int) -> str:
    """Make GPU `gpu_id` the device of spaCy (thinc) and torch; its name.

    A clean usage error (exit code 2) where spaCy or torch has no such GPU (`run.require_gpu`).
    """
    require_gpu(gpu_id)
    set_gpu_allocator("pytorch")  # one pool, so torch's peak covers spaCy's arrays too
    return torch.cuda.get_device_name(gpu_id)


def markdown_table(records: List[Dict[str, Any]]) -> str:
    first = records[0]
    gpu = "peak_gpu_mb" in first
    lines = [
        f"Model `{first['model']}`, encoder `{first['encoder']}` ({first['hf_labels']} tags on the Hugging Face side, "
        f"{HF_HEAD_NOTE}); {first['device']}, {first['threads']} torch threads; {first['docs']} documents; "
        f"encoders in {first.get('precision', 'float32')}.",
        "",
        "| system | batch size | words | seconds | words/s |" + (" peak GPU MB |" if gpu else ""),
        "| --- | ---: | ---: | ---: | ---: |" + (" ---: |" if gpu else ""),
    ]
    for r in records:
        lines.append(
            f"| {r['system']} | {r['batch_size']} | {r['words']:,} | {r['seconds']:.2f} | "
            f"**{r['words_per_second']:,}** |" + (f" {r['peak_gpu_mb']:,} |" if gpu else "")
        )
    return "\n".join(lines) + "\n"


@app.command()
def main(
    model: ModelOption = "en_bioner_scibert",
    encoder: Optional[str] = typer.Option(
        None,
        help="Encoder of the Hugging Face pipeline: a hub name (cached) or a directory. "
        "Default: the spaCy pipeline's own transformer (weights and tokenizer).",
    ),
    corpus_root: CorpusRootOption = BENCHMARKS / "corpus",
    n_docs: NDocsOption = 100,
    batch_sizes: BatchSizesOption = list(INFERENCE_BATCH_SIZES),
    repeats: int = typer.Option(1, min=1, help="Timings per system and batch size; the median is reported."),
    output_dir: Path = typer.Option(BENCHMARKS / "results", help="Where the JSON records go."),
    tag: str = typer.Option("", help="Suffix for the output file names."),
    gpu_id: int = typer.Option(-1, help="GPU for both systems (-1: the CPU)."),
    precision: Optional[str] = typer.Option(
        None, help=f"Both encoders' precision: {' or '.join(LOAD_PRECISIONS)} (autocast); default: the "
        "spaCy pipeline's own.",
    ),
) -> None:
    """Time `nlp.pipe` and `pipeline("ner")` on the same texts, on the CPU or a GPU."""
    gpu_name = use_gpu(gpu_id) if gpu_id >= 0 else ""  # before the pipeline loads
    try:
        # use_gpu has made the GPU spaCy's device: -1 here loads onto it.
        nlp = load_pipeline(model, precision=precision)
    except PipelineLoadError as error:
        raise typer.BadParameter(str(error), param_hint="--model or --precision") from error
    running_precision = encoder_precision(nlp) or "float32"  # what both systems compute in
    tags = head_tags(nlp)
    texts = load_texts(corpus_root, n_docs)
    n_words = sum(len(text.split()) for text in texts)
    if encoder is None:
        hf_model, tokenizer = pipeline_token_classifier(nlp, tags)
        encoder_used = nlp.meta.get(ENCODER_META_KEY) or describe_encoder(encoder_name(nlp))["encoder"]
    else:
        source = resolve_encoder(encoder, DEFAULT_ENCODER)
        hf_model, tokenizer = hf_token_classifier(source, tags)
        encoder_used = describe_encoder(source)["encoder"]
    stride = hf_stride(tokenizer)
    device = "cpu" if gpu_id < 0 else f"cuda:{gpu_id}"
    log(
        f"{len(texts)} texts, {n_words:,} words; {len(tags)} tags; {torch.get_num_threads()} torch threads; "
        f"{device}{' (' + gpu_name + ')' if gpu_name else ''}"
    )

    def timed(system: str, batch_size: int) -> float:
        if system == "spacy_bioner":
            return spacy_words_per_second(nlp, texts, batch_size, gpu_id)
        # The spaCy pipeline's own precision, whichever it is (a pipeline trained in float16 too).
        half = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(running_precision)
        autocast = (torch.autocast(device_type=torch.device(device).type, dtype=half)
                    if half is not None else contextlib.nullcontext())
        with autocast:  # pipeline_words_per_second synchronises CUDA before each clock reading itself
            return pipeline_words_per_second(
                hf_model, texts, batch_size, device=device, tokenizer=tokenizer, stride=stride
            )

    seconds: Dict[Tuple[str, int], List[float]] = {(s, b): [] for s in SYSTEMS for b in batch_sizes}
    peak_mb: Dict[Tuple[str, int], int] = {}
    for repeat in range(repeats):
        for i, batch_size in enumerate(batch_sizes):
            # Who goes first alternates from one batch size and one repeat to the next.
            for system in SYSTEMS if (repeat + i) % 2 == 0 else SYSTEMS[::-1]:
                if gpu_id >= 0:
                    synchronize(gpu_id)
                    torch.cuda.reset_peak_memory_stats(gpu_id)
                wps = timed(system, batch_size)
                seconds[system, batch_size].append(n_words / wps)
                if gpu_id >= 0:
                    peak = round(torch.cuda.max_memory_allocated(gpu_id) / 2**20)
                    peak_mb[system, batch_size] = max(peak, peak_mb.get((system, batch_size), 0))
                log(f"{system} batch {batch_size} (run {repeat + 1}/{repeats}): {wps:,.0f} words/s")

    shared = {
        "model": model,
        "encoder": encoder_used,
        "encoder_weights": "the spaCy pipeline's" if encoder is None else "the encoder's own",
        "precision": running_precision,
        "hf_labels": len(tags),
        "hf_head": HF_HEAD_NOTE,
        "hf_stride": stride,
        "hf_max_length": tokenizer.model_max_length,
        "docs": len(texts),
        "repeats": repeats,
        "device": f"{gpu_name} ({device}), host {host_description()}" if gpu_name else host_description(),
        "threads": torch.get_num_threads(),
        "versions": versions(),
    }
    records = []
    for (system, batch_size), runs in seconds.items():
        median = statistics.median(runs)
        records.append({
            "system": system,
            "batch_size": batch_size,
            "words": n_words,
            "seconds": round(median, 3),
            "words_per_second": round(n_words / median),
            "runs_seconds": [round(s, 3) for s in runs],
            **shared,
            **({"peak_gpu_mb": peak_mb[system, batch_size]} if gpu_id >= 0 else {}),
        })
    stem = f"{datetime.date.today().isoformat()}-{'cpu' if gpu_id < 0 else 'gpu'}-inference{'-' + tag if tag else ''}"
    write_results(records, output_dir, stem)
    print(markdown_table(records))
    log(f"wrote {output_dir / stem}.json")


if __name__ == "__main__":
    app()
