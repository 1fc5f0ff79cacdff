"""`annotate`: run a pipeline over a literature collection into entity tables."""

import sys
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Dict, List, Optional

import typer

from ..messages import counted
from ._util import PRECISION, Precision, app, check_output_dir, fail, log, score_text


class TableFormat(str, Enum):
    """The file format of the output tables."""

    parquet = "parquet"
    jsonl = "jsonl"


class Engine(str, Enum):
    """Where the pipeline runs."""

    local = "local"
    ray = "ray"


@app.command()
def annotate(
    model: str = typer.Argument(
        ..., metavar="MODEL",
        help="Pipeline: installed package name or directory. One trained by this project writes each head's "
        "spans with scores; any other spaCy pipeline that sets doc.ents (spaCy's ner, a scispaCy model) "
        "writes doc.ents, without scores.",
    ),
    inputs: List[Path] = typer.Argument(
        ..., metavar="INPUT",
        help="Inputs, in order: PubMed/MEDLINE XML (.xml, .xml.gz, .xml.xz), JSON Lines (.jsonl or .ndjson; "
        ".gz, .xz too), "
        "Parquet (.parquet) or a folder of .txt files (UTF-8; id = file name without .txt). A folder is read "
        "for the files directly in it named *.txt in any case (links too, those to files outside it listed in "
        "the log); subfolders and other files are skipped, and listed in the log.",
    ),
    output: Path = typer.Option(..., "--output", "-o",
                                help="Output directory: tables, shard manifests, summary.json."),
    fmt: TableFormat = typer.Option(
        # A short metavar: the choices would narrow --help's option column and cut names.
        TableFormat.parquet, "--format", metavar="<format>", help="Table format: parquet or jsonl."
    ),
    engine: Engine = typer.Option(
        # \[ keeps rich markup from taking "[ray]" for a style tag in --help.
        Engine.local, "--engine", metavar="<engine>",
        help="local (this machine) or ray (Ray Data; needs spacy-bioner\\[ray]).",
    ),
    address: Optional[str] = typer.Option(
        None, "--address",
        help="Only with --engine ray: address of a running Ray cluster (default: start a local Ray).",
    ),
    n_process: int = typer.Option(
        1, "--n-process", "-n",
        help="local: CPU processes, each loading the pipeline once (spawned, not forked); "
        "ray: annotator actors.",
    ),
    gpu_id: int = typer.Option(
        -1, "--gpu-id", "-g",
        help="GPU to use (-1: CPU). local: one process on that GPU; ray: any value >= 0 gives each actor "
        "one GPU, the one Ray assigns it (the value names no device there).",
    ),
    precision: Optional[Precision] = PRECISION,
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Documents per nlp.pipe batch at most."),
    max_batch_chars: int = typer.Option(
        100_000, "--max-batch-chars",
        help="Characters per batch at most (a longer document goes alone): bounds the memory of a forward pass.",
    ),
    max_doc_chars: int = typer.Option(
        0, "--max-doc-chars",
        help="Reject documents longer than this (0: the pipeline's nlp.max_length) as too_long: your own "
        "limit, so not bad input, not counted against --max-rejects.",
    ),
    shard_size: int = typer.Option(
        10_000, "--shard-size",
        help="Input items per shard: each input is written in shards of this many records (a PubMed "
        "DeleteCitation takes a place for each PMID it lists), the unit of resume.",
    ),
    limit: int = typer.Option(
        0, "--limit",
        help="Read only the first N records of each input (0: all), e.g. to try a pipeline or the options on "
        "a large collection; records count as for --shard-size. A run with another --limit is another run.",
    ),
    id_key: str = typer.Option("id", "--id-key", help="JSON Lines/Parquet: the field or column of the id."),
    text_key: str = typer.Option("text", "--text-key", help="JSON Lines/Parquet: the field or column of the text."),
    max_rejects: int = typer.Option(
        1000, "--max-rejects",
        help="Fail (exit 1) once more records than this are rejected as bad input; rejects up to then are "
        "written (to go on, raise it with --resume). Records with no text to annotate (empty_text: e.g. a PubMed "
        "record with a title in another language only) and records longer than --max-doc-chars (too_long) are "
        "rejected too, but not counted.",
    ),
    resume: bool = typer.Option(
        False, "--resume",
        help="Continue the run in --output (it must hold one, with the same model, inputs, options and "
        "spacy-bioner version, but "
        "--batch-size and --max-batch-chars may change, e.g. to smaller batches after running out of memory: "
        "the same entities, scores different in the sixth decimal; and --max-rejects, to go on past it); "
        "finished shards are skipped. Without "
        "--resume, --output must be new or empty, or hold the same run, which is then completed the same way.",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Delete the tables of a previous run in --output and start again."
    ),
    progress: Optional[bool] = typer.Option(
        None, "--progress/--no-progress",
        help="Progress bar: documents, words/s, ETA (default: on when stderr is a terminal). Off: a line on "
        "stderr for each shard written instead, and no Ray Data progress bars.",
        show_default=False,
    ),
    show: int = typer.Option(0, "--show", help="Print the first N rows of the entity table at the end."),
) -> None:
    """Annotate a literature collection: PubMed XML, JSON Lines, text or Parquet to entity tables.

    Writes, under --output, an entity table (doc_id, source, record,
    start_char, end_char, text, label, spans_key, score, in_ents: one row
    per span of each head, in_ents true for the spans of doc.ents, which
    have no overlaps; then one row per entity of doc.ents that no head
    found (an entity ruler's; every one of a pipeline without heads), with
    no spans_key or score; start_char and end_char are Python
    code-point offsets into the document text, not bytes), a document table
    (one row per input record, annotated or rejected), a rejects table
    (source, record, doc_id, kind, reason) and summary.json; source is the
    input's resolved path (as is each input's path in summary.json), and
    (source, record) is a document's key (a PubMed record is "record N, PMID
    P", the N-th of its file, as a PMID may repeat in one). A PubMed
    document is "ArticleTitle + space + abstract", structured-abstract
    sections joined by spaces as "LABEL: text". Bad records are rejected and
    the run goes on; a killed run resumes with --resume.
    """
    from ..annotate import AnnotateError, Options
    from ..annotate import annotate as run_annotate

    if resume and overwrite:
        raise fail("--resume and --overwrite exclude each other")
    check_output_dir(output, "--output")  # before the pipeline is loaded
    if engine == Engine.ray:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise fail("--engine ray needs Ray: pip install 'spacy-bioner[ray]'") from None
    from ..annotate.output import SHARDS_DIR

    def manifests() -> Dict[str, int]:
        """The shards' manifests (written last) in --output, with their times."""
        return {path.name: path.stat().st_mtime_ns for path in (output / SHARDS_DIR).glob("*.json")}

    before = manifests()
    try:
        options = Options(
            engine=engine.value, fmt=fmt.value, shard_size=shard_size, batch_size=batch_size,
            max_batch_chars=max_batch_chars, max_doc_chars=max_doc_chars, limit=limit, n_process=n_process,
            gpu_id=gpu_id,
            precision=None if precision is None else precision.value,
            id_key=id_key, text_key=text_key, max_rejects=max_rejects, address=address,
            progress=sys.stderr.isatty() if progress is None else progress,
        )
        summary = run_annotate(model, inputs, output, options, resume=resume, overwrite=overwrite, log=log,
                               progress_log=partial(log, err=True))
    except AnnotateError as e:  # TooManyRejects too
        raise fail(str(e)) from None
    except KeyboardInterrupt:
        after = manifests()
        if not after:
            typer.echo(f"Interrupted before any shard was written to {output}; the same command starts the run.",
                       err=True)
            raise typer.Exit(130) from None
        if after == before:  # interrupted while loading, say: a previous run, not yet checked against this one
            # Not "as it was": an invocation takes summary.json away when it starts, and writes it when it ends.
            typer.echo(f"Interrupted before a shard was written to {output}: the shards there are as they were; "
                       "summary.json is written when a run ends.", err=True)
            raise typer.Exit(130) from None
        # Rerunning with --overwrite would delete the shards just written; without it, the same
        # command completes this run.
        finish = "the same command without --overwrite" if overwrite else "the same command"
        typer.echo(f"Interrupted: the shards written to {output} are kept; {finish} finishes the run.", err=True)
        raise typer.Exit(130) from None
    speed = summary["this_invocation"]
    empty = [entry["path"] for entry in summary["inputs"] if not entry["records"] and not entry["deleted"]]
    if empty and summary["status"] == "complete":  # an empty file, a download that failed
        what = "there was nothing to annotate" if len(empty) == len(summary["inputs"]) else "the others were read"
        typer.echo(f"Warning: {counted(len(empty), 'input')} without records ({what}): {', '.join(empty)}", err=True)
    if speed["shards_written"]:
        this_run = f"{speed['words_per_s'] or 0:,.0f} words/s this run"
    elif speed["shards_skipped"]:
        this_run = "every shard was done before this run"
    else:
        this_run = "nothing annotated this run"
    log(
        f"{counted(summary['records'], 'record')}: {summary['documents']:,} annotated, "
        f"{summary['rejected']:,} rejected ({summary['rejected_bad_input']:,} bad input, counted against "
        f"--max-rejects; {summary['rejected_not_bad_input']:,} empty or too long, not counted), "
        f"{counted(summary['deleted'], 'deletion')}; {counted(summary['entities'], 'entity', 'entities')} "
        f"({counted(summary['entities_in_ents'], 'span')} of doc.ents); {this_run}"
    )
    if limit:
        typer.echo(f"--limit {limit:,}: at most the first {counted(limit, 'record')} of each input were read")
    for label, count in summary["entities_per_label"].items():
        typer.echo(f"  {label:30} {count}")
    if summary["rejected"]:
        typer.echo(f"rejects by kind: {summary['rejects_by_kind']} (all in {output}/rejects)")
    if show > 0:
        from ..annotate.output import first_entity_rows

        rows = first_entity_rows(output, fmt.value, show)
        typer.echo(f"{output}/entities, the first {len(rows)} in text order (ents: the span is in doc.ents):")
        typer.echo(f"  {'doc_id':>10} {'start':>5}-{'end':<5} {'head':8} {'label':10} {'score':>6} {'ents':4}  text")
        for row in rows:
            head = row["spans_key"] or "-"  # none for doc.ents of a pipeline without heads
            typer.echo(f"  {row['doc_id']:>10} {row['start_char']:>5}-{row['end_char']:<5} {head:8} "
                       f"{row['label']:10} {score_text(row['score']):>6} {'yes' if row['in_ents'] else 'no':4}  "
                       f"{row['text']}")
    log(f"wrote {output}/summary.json")
