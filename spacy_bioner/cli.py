"""Command line: `python -m spacy_bioner COMMAND`.

Errors in the input are reported as one line on stderr with a non-zero exit
status, never a traceback, and no output file is left behind.
"""

from enum import Enum
from pathlib import Path
from typing import List, Optional, Tuple

import typer
from spacy.tokens import Doc

from .conversion import ConversionError, ConversionReport, write_docbin
from .readers import (
    BC5CDR_SPANS_KEY,
    DEFAULT_SPANS_KEY,
    JNLPBA_SPANS_KEY,
    read_iob,
    read_pubtator,
)
from .tokenizer import make_bio_nlp

app = typer.Typer(
    name="spacy_bioner",
    help="Biomedical named-entity recognition for spaCy: corpus conversion and tools.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """Biomedical named-entity recognition for spaCy: corpus conversion and tools."""


class CorpusFormat(str, Enum):
    jnlpba = "jnlpba"
    pubtator = "pubtator"
    iob = "iob"


class Scheme(str, Enum):
    auto = "auto"
    iob1 = "iob1"
    iob2 = "iob2"
    bioes = "bioes"


_DEFAULT_KEYS = {
    CorpusFormat.jnlpba: JNLPBA_SPANS_KEY,
    CorpusFormat.pubtator: BC5CDR_SPANS_KEY,
    CorpusFormat.iob: DEFAULT_SPANS_KEY,
}


def _fail(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(1)


def _read(
    fmt: CorpusFormat, path: Path, spans_key: str, n_sents: int, scheme: Scheme
) -> Tuple[List[Doc], ConversionReport]:
    if fmt == CorpusFormat.pubtator:
        return read_pubtator(path, make_bio_nlp(), spans_key=spans_key)
    # JNLPBA is IOB2 (read_jnlpba); --scheme and --n-sents still apply.
    scheme_name = "iob2" if fmt == CorpusFormat.jnlpba and scheme == Scheme.auto else scheme.value
    return read_iob(path, make_bio_nlp().vocab, scheme=scheme_name, n_sents=n_sents, spans_key=spans_key)


@app.command()
def convert(
    fmt: CorpusFormat = typer.Argument(
        ..., metavar="FORMAT", help="Input format: jnlpba (Genia4*2.iob2 with ###MEDLINE: markers), "
        "pubtator (BC5CDR PubTator) or iob (token<TAB>tag, IOB1/IOB2/BIOES)."
    ),
    input_path: Path = typer.Argument(..., metavar="INPUT", help="Input file, plain or .gz."),
    output: Path = typer.Argument(..., metavar="OUTPUT", help="Output .spacy (DocBin) file."),
    dev_docs: int = typer.Option(
        0, "--dev-docs", min=0, help="Write the LAST N documents of INPUT to --dev-output instead of OUTPUT "
        "(JNLPBA standard dev split: 200)."
    ),
    dev_output: Optional[Path] = typer.Option(
        None, "--dev-output", help="Output .spacy file for the --dev-docs documents."
    ),
    n_sents: int = typer.Option(
        1, "--n-sents", min=1, help="iob/jnlpba without document markers: sentences per Doc."
    ),
    spans_key: Optional[str] = typer.Option(
        None, "--spans-key", help="doc.spans key for the entities (default: jnlpba, bc5cdr for "
        "pubtator, ents for iob). The bio_ner head with this key learns from them."
    ),
    max_loss: float = typer.Option(
        0.005, "--max-loss", min=0.0, max=1.0, help="Fail (exit 1, nothing written) if more than this "
        "fraction of an output's entities is dropped or moved to other token boundaries."
    ),
    scheme: Scheme = typer.Option(
        Scheme.auto, "--scheme", help="Tagging scheme of iob input; auto detects it per file."
    ),
) -> None:
    """Convert a corpus to spaCy's DocBin format and print what was converted.

    Both doc.ents and doc.spans[SPANS_KEY] hold the entities. A table per
    output lists documents, sentences, tokens, entities per label and every
    entity that was repaired, expanded to token boundaries or dropped.
    """
    if (dev_docs > 0) != (dev_output is not None):
        raise _fail("--dev-docs and --dev-output must be given together")
    if dev_output is not None and dev_output.resolve() == output.resolve():
        raise _fail("--dev-output must differ from OUTPUT")
    key = spans_key or _DEFAULT_KEYS[fmt]
    try:
        docs, report = _read(fmt, input_path, key, n_sents, scheme)
    except ConversionError as e:
        raise _fail(str(e)) from None
    if dev_docs >= len(docs):
        raise _fail(f"{input_path}: --dev-docs {dev_docs} leaves no training documents ({len(docs)} in all)")
    split = len(docs) - dev_docs
    outputs = [(output, docs[:split], report.subset(docs, 0, split, key))]
    if dev_output is not None:
        outputs.append((dev_output, docs[split:], report.subset(docs, split, len(docs), key)))
    for path, _, part in outputs:
        typer.echo(part.table(title=str(path)))
        typer.echo("")
    for path, _, part in outputs:
        if part.loss_fraction > max_loss:
            raise _fail(
                f"{path}: {part.loss_fraction:.3%} of the entities would be lost "
                f"(more than --max-loss {max_loss:.3%}); nothing written"
            )
    try:
        for path, part_docs, _ in outputs:
            write_docbin(part_docs, path)
    except OSError as e:
        raise _fail(f"cannot write output: {e}") from None
    typer.echo("Wrote " + ", ".join(f"{path} ({len(part_docs)} docs)" for path, part_docs, _ in outputs))


# ---------------------------------------------------------------------------
# Evaluation, visualization, packaging, demo

SAMPLE_ABSTRACT = (
    "Naloxone reverses the antihypertensive effect of clonidine. In unanesthetized, "
    "spontaneously hypertensive rats the decrease in blood pressure and heart rate produced "
    "by intravenous clonidine was inhibited by naloxone. Interleukin-2 (IL-2) induces the "
    "expression of the IL-2 receptor alpha gene and activates NF-kappa B in human T cells "
    "and in the Jurkat cell line, whereas c-fos mRNA levels were unchanged."
)


def _log(text: str) -> None:
    import time

    typer.echo(f"[{time.strftime('%H:%M:%S')}] {text}")


def _load(model: str, gpu_id: int):
    import spacy

    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    try:
        return spacy.load(model)
    except (OSError, IOError) as e:
        raise _fail(f"cannot load pipeline {model!r}: {e}") from None


def _named_paths(values: List[str], option: str) -> List[Tuple[str, Path]]:
    named = []
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise _fail(f"{option} takes NAME=PATH, got {value!r}")
        if not Path(path).exists():
            raise _fail(f"{option} {name}: no such file: {path}")
        named.append((name, Path(path)))
    return named


@app.command()
def evaluate(
    model: str = typer.Argument(..., help="Trained pipeline: directory or installed package name."),
    corpus: List[str] = typer.Option(
        ..., "--corpus", "-c", help="NAME=PATH of a test .spacy file (repeatable). The head scored is "
        "the one whose spans_key the documents carry (jnlpba, bc5cdr)."
    ),
    output_dir: Path = typer.Option(Path("metrics"), "--output-dir", "-o", help="Where the metrics go."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Documents per nlp.pipe batch."),
    limit: int = typer.Option(0, "--limit", min=0, help="Only the first N documents of each corpus (0: all)."),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU to run on; -1 for the CPU."),
    command: str = typer.Option("", "--command", help="The command that produced the pipeline, for the table."),
) -> None:
    """Score each head on its corpus's test set, with gold tokenization.

    Writes OUTPUT_DIR/<NAME>.json (seqeval micro and per-type P/R/F1 in the
    default conlleval-compatible mode, and spaCy's scorer), OUTPUT_DIR/scores.md
    (a Markdown table) and OUTPUT_DIR/per_type_f1.png (per-type F1 bars).
    """
    from .evaluation import evaluate_corpus, write_metrics
    from .packaging import describe_encoder, encoder_name

    corpora = _named_paths(corpus, "--corpus")
    _log(f"loading {model}")
    nlp = _load(model, gpu_id)
    encoder = nlp.meta.get("spacy_bioner_encoder") or describe_encoder(encoder_name(nlp) or "?")["encoder"]
    _log(f"pipeline {nlp.pipe_names}, encoder {encoder}")
    results = {}
    for name, path in corpora:
        try:
            results[name] = evaluate_corpus(nlp, name, path, batch_size=batch_size, limit=limit, log=_log)
        except ValueError as e:
            raise _fail(str(e)) from None
    for path in write_metrics(results, output_dir, encoder=encoder, command=command):
        _log(f"wrote {path}")
    typer.echo((output_dir / "scores.md").read_text(encoding="utf8"))


@app.command()
def visualize(
    model: str = typer.Argument(..., help="Trained pipeline: directory or installed package name."),
    test: str = typer.Argument(..., metavar="TEST", help="Test .spacy file(s), comma-separated."),
    output: Path = typer.Argument(..., help="Output HTML file."),
    n: int = typer.Option(5, "--n", min=1, help="Abstracts per test file."),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU to run on; -1 for the CPU."),
) -> None:
    """Render N test abstracts with displaCy: gold and predicted entities side by side."""
    from spacy.tokens import DocBin

    from .conversion import gold_token_doc
    from .visualize import render_side_by_side

    paths = [Path(p) for p in test.split(",") if p]
    for path in paths:
        if not path.exists():
            raise _fail(f"no such file: {path}")
    nlp = _load(model, gpu_id)
    pairs = []
    for path in paths:
        gold = []
        for doc in DocBin().from_disk(path).get_docs(nlp.vocab):
            gold.append(doc)
            if len(gold) >= n:
                break
        predicted = nlp.pipe([gold_token_doc(nlp.vocab, doc) for doc in gold])
        for i, (ref, pred) in enumerate(zip(gold, predicted)):
            pairs.append((f"{path} #{i + 1}", ref, pred))
        _log(f"{path}: rendered {len(gold)} documents")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_side_by_side(pairs), encoding="utf8")
    _log(f"wrote {output}")


@app.command("prepare-package")
def prepare_package_cli(
    model_dir: Path = typer.Argument(..., help="Trained pipeline directory (training/model-best)."),
    output_dir: Path = typer.Argument(..., help="Where the package input (pipeline + meta + README) goes."),
    metrics_dir: Path = typer.Option(Path("metrics"), "--metrics", help="Metrics written by `evaluate`."),
    name: str = typer.Option("bioner_scibert", "--name", help="Package name without the language prefix."),
    version: str = typer.Option("0.1.0", "--version", help="Package version."),
    command: str = typer.Option("", "--command", help="The command that produced the scores, for the card."),
) -> None:
    """Copy a trained pipeline with a package meta.json and a README model card.

    meta.json gets the name, version, requirements (spacy-bioner,
    spacy-transformers), the encoder used (sources, description) and the
    measured test scores; README.md is the model card. Then run
    `spacy package OUTPUT_DIR packages --build sdist,wheel`.
    """
    from .packaging import prepare_package

    if not (model_dir / "meta.json").exists():
        raise _fail(f"{model_dir} is not a trained pipeline (no meta.json)")
    try:
        meta = prepare_package(model_dir, metrics_dir, output_dir, name, version, command)
    except ValueError as e:
        raise _fail(str(e)) from None
    _log(f"wrote {output_dir} ({meta['lang']}_{meta['name']} {meta['version']}): {meta['description']}")


@app.command()
def demo(
    model: str = typer.Argument("en_bioner_scibert", help="Pipeline: installed package name or directory."),
    text: str = typer.Option(SAMPLE_ABSTRACT, "--text", help="Text to annotate (default: a sample abstract)."),
) -> None:
    """Load a pipeline and print the entities it finds in a sample abstract."""
    from .annotation import spans_with_scores
    from .evaluation import head_keys

    nlp = _load(model, -1)
    doc = nlp(text)
    typer.echo(f"{model} {nlp.meta.get('version', '')}: {nlp.pipe_names}")
    typer.echo(f"encoder: {nlp.meta.get('spacy_bioner_encoder', 'unknown')}")
    typer.echo(f"doc.ents ({len(doc.ents)}):")
    for ent in doc.ents:
        typer.echo(f"  {ent.text!r:40} {ent.label_}")
    for key in head_keys(nlp):
        typer.echo(f"doc.spans[{key!r}]:")
        for span, score in spans_with_scores(doc, key):
            typer.echo(f"  {span.text!r:40} {span.label_:10} {score:.3f}")
