"""The CPU work around the encoder: training-step time and `nlp.pipe` words/s
with a 1-layer, 8-wide random BERT that uses the real encoder's tokenizer.

    python scripts/step_overhead.py --output results/step-overhead.json   # from benchmarks/

With the encoder's arithmetic reduced to almost nothing, what is left is what
a GPU cannot speed up: tokenization and alignment, spaCy's example handling,
the loss, CRF and Viterbi (which run on the CPU), the optimizer's bookkeeping.
On the 2026-11-22 H100 profile that work was most of a training step.

The same JNLPBA training batches (the shipped config's batcher at
`--batch-words`) are trained on twice: "first sight" is epoch 1, "repeat" is
what epochs 2+ cost (windows the encoder has seen before). Then the pipeline
tags `--infer-docs` test documents at batch 32 and 128. Each setting is run
with the CRF and with the softmax head.
"""

import statistics
import tempfile
import time
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import typer
from spacy.language import Language
from spacy.training import Example
from spacy.training.initialize import init_nlp
from spacy.training.loop import create_train_batches
from spacy.util import registry, resolve_dot_names
from thinc.api import Optimizer, fix_random_seed

from run import (
    BENCHMARKS,
    DEFAULT_CONFIG,
    DEFAULT_ENCODER,
    INFERENCE_BATCH_SIZES,
    check_corpus,
    device_name,
    head_type_overrides,
    log,
    spacy_config,
    versions,
    words_per_second,
    write_json,
)
from spacy_bioner.corpora import gold_token_doc, load_docs
from spacy_bioner.encoders import resolve_encoder

app = typer.Typer(add_completion=False)


class Heads(str, Enum):
    both = "both"
    crf = "crf"
    softmax = "softmax"

    def crf_settings(self) -> List[bool]:
        return {"both": [True, False], "crf": [True], "softmax": [False]}[self.value]


def tiny_encoder(tokenizer_source: str, path: Path) -> Path:
    """A randomly initialised 1-layer, 8-wide BERT with the source's tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    tokenizer.save_pretrained(str(path))
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
        intermediate_size=8, max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(str(path))
    return path


def training_setup(
    corpus_dir: Path, encoder: Path, crf: bool, batch_words: int, n_batches: int, config_path: Path = DEFAULT_CONFIG
) -> Tuple[Language, List[List[Example]], Callable[[List[Example]], None]]:
    """The JNLPBA pipeline of `config_path` on `encoder`, initialised (seed 0);
    up to `n_batches` of its first epoch's training batches; a training step on
    a batch, as spaCy's loop takes it (the config's dropout, then the
    optimizer's schedules: without them the warm-up's learning rate stays 0)."""
    fix_random_seed(0)
    overrides = {"training.batcher.size": batch_words, **head_type_overrides(crf)}
    config = spacy_config("spacy_bioner", corpus_dir, "jnlpba", str(encoder), 1, 100, overrides, 0, config_path)
    nlp = init_nlp(config)
    training = registry.resolve(config["training"])
    [corpus] = resolve_dot_names(config, [config["training"]["train_corpus"]])
    batches = create_train_batches(nlp, corpus, training["batcher"], 1)
    optimizer: Optimizer = training["optimizer"]

    def step(batch: List[Example]) -> None:
        nlp.update(batch, sgd=optimizer, drop=training["dropout"])
        optimizer.step_schedules()

    return nlp, [batch for _, (_, batch) in zip(range(n_batches), batches)], step


def measure(
    corpus_dir: Path, encoder: Path, crf: bool, batch_words: int, steps: int, infer_docs: int,
    config_path: Path = DEFAULT_CONFIG,
) -> Dict[str, Any]:
    # Two warm-up steps, then the timed ones.
    nlp, batches, step = training_setup(corpus_dir, encoder, crf, batch_words, steps + 2, config_path)
    for batch in batches[:2]:
        step(batch)
    record: Dict[str, Any] = {"crf": crf, "batch_words": batch_words, "steps": len(batches) - 2}
    for label in ("first_sight", "repeat"):
        step_ms = []
        for batch in batches[2:]:
            start = time.perf_counter()
            step(batch)
            step_ms.append(1000 * (time.perf_counter() - start))
        record[f"ms_per_step_{label}"] = round(statistics.mean(step_ms), 1)
        # The median resists what another tenant of the cores adds to a few steps.
        record[f"median_ms_per_step_{label}"] = round(statistics.median(step_ms), 1)
    record["words_per_step"] = round(statistics.mean(sum(len(eg) for eg in b) for b in batches[2:]))
    docs = load_docs(corpus_dir / "test.spacy", nlp.vocab, infer_docs)
    record["words_per_second"] = {str(size): round(words_per_second(nlp, docs, size)) for size in INFERENCE_BATCH_SIZES}
    # Work that grows with the entities (their scores, the abbreviation step, doc.ents) is in the
    # words/s only as far as the negligible encoder's heads predict any.
    record["entities_predicted"] = sum(len(doc.ents) for doc in nlp.pipe(gold_token_doc(nlp.vocab, d) for d in docs))
    return record


@app.command()
def main(
    corpus_root: Path = typer.Option(BENCHMARKS / "corpus", help="Converted corpora: <root>/jnlpba/{train,test}.spacy."),
    config_path: Path = typer.Option(DEFAULT_CONFIG, "--config", help="The pipeline config to cut down."),
    tokenizer: str = typer.Option(DEFAULT_ENCODER, help="Whose tokenizer the tiny BERT uses (a path or a hub name)."),
    batch_words: int = typer.Option(8000, help="Training batch size in padded words."),
    steps: int = typer.Option(20, min=1, help="Timed training steps."),
    infer_docs: int = typer.Option(200, min=1, help="Test documents tagged for words/s."),
    heads: Heads = typer.Option(Heads.both, "--head", help="Which head to measure."),
    output: Optional[Path] = typer.Option(None, help="Also write the records here as JSON."),
) -> None:
    """Time the CPU work of training steps and inference around a negligible encoder."""
    corpus_dir = check_corpus(corpus_root, "jnlpba", ("train", "test"))
    source = resolve_encoder(tokenizer, DEFAULT_ENCODER)
    records: List[Dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        encoder = tiny_encoder(source, Path(tmp) / "tiny-bert")
        for crf in heads.crf_settings():
            record = measure(corpus_dir, encoder, crf, batch_words, steps, infer_docs, config_path)
            record.update(device=device_name(-1), versions=versions())
            log(
                f"{'CRF' if crf else 'softmax'}: {record['ms_per_step_first_sight']} ms/step (first sight), "
                f"{record['ms_per_step_repeat']} ms/step (repeat), medians {record['median_ms_per_step_first_sight']} "
                f"and {record['median_ms_per_step_repeat']}, {record['words_per_step']} words/step; "
                f"nlp.pipe {record['words_per_second']} words/s"
            )
            records.append(record)
    if output is not None:
        write_json(output, records)
        log(f"wrote {output}")


if __name__ == "__main__":
    app()
