"""`evaluate` (seqeval and spaCy's scorer per head) and `visualize` (displaCy)."""

from pathlib import Path
from typing import List, Optional

import typer

from ..loading import encoder_precision
from ..messages import counted
from ._util import (
    COMMAND_FILE,
    GPU_ID,
    PRECISION,
    Precision,
    app,
    check_input_corpus,
    check_output_dir,
    check_output_file,
    command_text,
    fail,
    load_pipeline,
    log,
    named_corpora,
    named_values,
    pipeline_input,
    refuse_outputs_read,
    warnings_on_stderr,
    write_output_text,
)

MODEL = typer.Argument(..., metavar="MODEL", help="Trained pipeline: directory or installed package name.")
_GOLD_TOKENS_HELP = ("Run the pipeline on the corpus's gold tokens instead of its own tokenization of the text "
                     "(which it was trained on); either way its entities are laid on the gold tokens.")
GOLD_TOKENS = typer.Option(False, "--gold-tokens", help=f"{_GOLD_TOKENS_HELP} package-meta refuses these scores: "
                           "a user's pipeline reads raw text.")


@app.command()
def evaluate(
    model: str = MODEL,
    corpus: List[str] = typer.Option(
        ..., "--corpus", "-c", metavar="NAME=PATH", help="NAME=PATH of a test .spacy file, or a folder of them (repeatable). The head scored is "
        "the one whose spans_key the documents carry (jnlpba, bc5cdr)."
    ),
    output_dir: Path = typer.Option(Path("metrics"), "--output-dir", "-o", help="Where the metrics go."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Documents per nlp.pipe batch."),
    limit: int = typer.Option(0, "--limit", min=0, help="Only the first N documents of each corpus annotated for its head (0: all): partial scores, "
        "which package-meta refuses."),
    gpu_id: int = GPU_ID,
    command: str = typer.Option("", "--command", help="The command that produced the pipeline, for the table."),
    command_file: Optional[Path] = COMMAND_FILE,
    spans_key: List[str] = typer.Option(
        [], "--spans-key", metavar="NAME=KEY", help="The head to score on corpus NAME, by its spans_key, where "
        "the documents do not say: a corpus annotated in doc.ents only (no span groups) for a pipeline with "
        "several heads, or one carrying several heads' span groups. Documents whose span groups are all "
        "other keys (convert iob's default, ents) are not scored this way: convert them again with "
        "--spans-key KEY. Repeatable."
    ),
    gold_tokens: bool = GOLD_TOKENS,
    precision: Optional[Precision] = PRECISION,
) -> None:
    """Score each head on its corpus's test set with seqeval (entities compared on the corpus's tokens).

    The pipeline reads each document's text with its own tokenizer, as it was
    trained, and its entities are laid on the gold tokens (--gold-tokens: it
    reads the gold tokens).

    Writes OUTPUT_DIR/<NAME>.json (seqeval micro and per-type P/R/F1 and the
    entity counts in the default conlleval-compatible mode, spaCy's scorer, and
    the pipeline's SHA-256, which package-meta checks), OUTPUT_DIR/scores.md
    (a Markdown table) and OUTPUT_DIR/per_type_f1.png (per-type F1 bars).
    """
    from ..evaluation import evaluate_corpus, write_metrics
    from ..packaging import pipeline_encoder, pipeline_sha256

    command = command_text(command, command_file, Path(model))
    corpora = named_corpora(corpus, "--corpus")
    for name, _ in corpora:
        if "/" in name or "\\" in name or name in (".", ".."):  # it names OUTPUT_DIR/<NAME>.json
            raise fail(f"--corpus {name}: the name is used as a file name; use one without slashes")
    keys = dict(named_values(spans_key, "--spans-key", "NAME=KEY"))
    unknown = sorted(set(keys) - {name for name, _ in corpora})
    if unknown:
        raise fail(f"--spans-key names no --corpus: {', '.join(unknown)}")
    check_output_dir(output_dir, "--output-dir")
    refuse_outputs_read({"--output-dir": output_dir},
                        {**pipeline_input(model), **{f"--corpus {name}": path for name, path in corpora}}, "evaluate")
    _check_docbins([path for _, path in corpora])  # before the pipeline loads
    progress(f"loading {model}")
    nlp = load_pipeline(model, gpu_id, precision)
    encoder = pipeline_encoder(nlp)
    progress(f"pipeline {nlp.pipe_names}, encoder {encoder}")
    # Which pipeline the metrics are of: package-meta publishes them for this one only.
    # A load-time override, or float32 where the device cannot compute a bfloat16 pipeline's own
    # (None: the pipeline's own), which package-meta does not publish.
    computed = encoder_precision(nlp)
    overridden = precision.value if precision is not None else (
        computed if computed != encoder_precision(nlp, effective=False) else None)
    scored = {"pipeline": str(nlp.path), "pipeline_sha256": pipeline_sha256(nlp.path), "precision": overridden}
    results = {}
    with warnings_on_stderr():
        for name, path in corpora:
            try:
                results[name] = evaluate_corpus(
                    nlp, name, path, spans_key=keys.get(name), batch_size=batch_size, limit=limit,
                    gold_tokens=gold_tokens, log=progress,
                )
                results[name].update(scored)
            except ValueError as e:
                raise fail(str(e)) from None
        try:
            for path in write_metrics(results, output_dir, encoder=encoder, command=command):
                progress(f"wrote {path}")
        except OSError as e:
            where = f"{e.filename}: " if e.filename else ""
            raise fail(f"cannot write the metrics to {output_dir}: {where}{e.strerror or e}") from None
    _warn_of_other_metrics(output_dir, list(results))
    typer.echo((output_dir / "scores.md").read_text(encoding="utf8"))


def progress(text: str) -> None:
    """A progress line, on stderr: `evaluate` prints its table on stdout."""
    log(text, err=True)


def _check_docbins(paths: List[Path]) -> None:
    """Refuse a file that is no DocBin before the pipeline loads (it may take a minute)."""
    from ..corpora.docbin import docbin_files, read_docbin

    for path in paths:
        try:
            for file_ in docbin_files(path):
                read_docbin(file_)
        except ValueError as e:
            raise fail(str(e)) from None


def _warn_of_other_metrics(output_dir: Path, evaluated: List[str]) -> None:
    """Say so where OUTPUT_DIR holds metrics of corpora this run did not score (an earlier
    run's, perhaps of another pipeline): `package-meta --metrics` would publish them too."""
    from ..packaging import load_metrics

    try:
        others = [name for name in load_metrics(output_dir) if name not in evaluated]
    except (OSError, ValueError):  # a <name>.json that is not JSON: not metrics of ours
        return
    if others:
        typer.echo(
            f"Warning: {output_dir} also holds the metrics of {', '.join(others)}, not scored by this run "
            f"(an earlier run's): `package-meta --metrics {output_dir}` would publish them too; delete them "
            "or evaluate into another --output-dir",
            err=True,
        )


@app.command()
def visualize(
    model: str = MODEL,
    test: str = typer.Argument(..., metavar="TEST", help="Test .spacy file(s), or folders of them, comma-separated."),
    output: Path = typer.Argument(..., metavar="OUTPUT", help="Output HTML file."),
    n: int = typer.Option(5, "--n", min=1, help="Abstracts per TEST input (a folder of shards is one)."),
    gpu_id: int = GPU_ID,
    gold_tokens: bool = typer.Option(False, "--gold-tokens", help=_GOLD_TOKENS_HELP),
    precision: Optional[Precision] = PRECISION,
) -> None:
    """Render N test abstracts with displaCy: gold and predicted entities side by side.

    Shown are the entities of the heads an abstract carries the span groups of
    (what `evaluate` scores), predicted on the pipeline's own
    tokenization of each text and laid on the gold tokens (--gold-tokens: on
    the gold tokens). An abstract with no head's span group shows doc.ents.
    """
    from ..annotation import head_keys
    from ..corpora import load_docs
    from ..evaluation import predict_references
    from ..visualize import render_side_by_side

    paths = [Path(p.strip()) for p in test.split(",") if p.strip()]
    if not paths:
        raise fail("TEST names no file: give one or more .spacy files, comma-separated")
    for path in paths:
        check_input_corpus(path, "TEST")
    check_output_file(output, "OUTPUT")
    refuse_outputs_read({"OUTPUT": output}, {**pipeline_input(model), **{f"TEST {path}": path for path in paths}},
                        "visualize")
    _check_docbins(paths)
    nlp = load_pipeline(model, gpu_id, precision)
    heads = list(head_keys(nlp))
    pairs = []
    for path in paths:
        try:
            gold = load_docs(path, nlp.vocab, n)
        except ValueError as e:
            raise fail(str(e)) from None
        if not gold:
            raise fail(f"{path}: no documents; convert the corpus again (`python -m spacy_bioner convert`)")
        carried = sorted({key for doc in gold for key in doc.spans})
        if carried and not set(carried) & set(heads):
            typer.echo(f"Warning: {path}: no head of the pipeline predicts its span groups {carried} (heads: "
                       f"{sorted(heads)}): its gold is shown beside every head's entities", err=True)
        predicted = predict_references(nlp, gold, gold_tokens=gold_tokens)
        for i, (ref, pred) in enumerate(zip(gold, predicted)):
            pairs.append((f"{path} #{i + 1}", ref, pred))
        log(f"{path}: rendered {counted(len(gold), 'document')}")
    write_output_text(output, render_side_by_side(pairs, heads=heads))
    log(f"wrote {output}")
