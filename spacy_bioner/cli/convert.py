"""`python -m spacy_bioner convert`: a corpus file to a DocBin, with a report."""

import sys
from enum import Enum
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import typer
from spacy.tokens import Doc

from ..corpora import (
    ANNOTATION_CHOICES,
    BC5CDR_SPANS_KEY,
    DEFAULT_SPANS_KEY,
    DISCONTINUOUS,
    MENTION_UNITS,
    IOB_SCHEMES,
    JNLPBA_DEV_DOCS,
    JNLPBA_SPANS_KEY,
    ConversionError,
    ConversionReport,
    DevSplitError,
    DocBinWriter,
    commit_docbins,
    iter_bioc,
    iter_brat,
    iter_iob,
    iter_jnlpba,
    iter_jsonl,
    iter_label_studio,
    iter_pubtator,
    not_written_by_writer,
    read_pubtator_texts,
    split_dev_as_read,
)
from ..tokenizer import make_bio_nlp
from ._util import (
    app,
    check_output_dir,
    check_output_file,
    fail,
    given_options,
    refuse_outputs_read,
    warnings_on_stderr,
)


class CorpusFormat(str, Enum):
    """The input formats `convert` reads."""

    jnlpba = "jnlpba"
    pubtator = "pubtator"
    iob = "iob"
    jsonl = "jsonl"
    brat = "brat"
    bioc = "bioc"
    label_studio = "label-studio"


# The tagging schemes of iob input, as choices of --scheme.
Scheme = Enum("Scheme", {name: name for name in IOB_SCHEMES}, type=str)
# What the discontinuous mentions of brat and BioC input become, as choices of --discontinuous.
Discontinuous = Enum("Discontinuous", {name: name for name in DISCONTINUOUS}, type=str)
# Which of a Label Studio task's annotations is converted, as choices of --annotation.
AnnotationChoice = Enum("AnnotationChoice", {name.replace("-", "_"): name for name in ANNOTATION_CHOICES}, type=str)
# What the offsets of jsonl, brat, BioC and Label Studio input count, as choices of --offset-units.
OffsetUnits = Enum("OffsetUnits", {name: name for name in MENTION_UNITS}, type=str)


_DEFAULT_KEYS = {
    CorpusFormat.jnlpba: JNLPBA_SPANS_KEY,
    CorpusFormat.pubtator: BC5CDR_SPANS_KEY,
    CorpusFormat.iob: DEFAULT_SPANS_KEY,
    CorpusFormat.jsonl: DEFAULT_SPANS_KEY,
    CorpusFormat.brat: DEFAULT_SPANS_KEY,
    CorpusFormat.bioc: DEFAULT_SPANS_KEY,
    CorpusFormat.label_studio: DEFAULT_SPANS_KEY,
}

# The options (by parameter name) that only some formats read, and those formats.
_FORMAT_OPTIONS = {
    ("n_sents", "scheme", "documents", "tag_column", "label"): (CorpusFormat.iob,),
    ("text_key", "id_key"): (CorpusFormat.jsonl, CorpusFormat.label_studio),
    ("entities_key",): (CorpusFormat.jsonl,),
    ("offset_units",): (CorpusFormat.jsonl, CorpusFormat.brat, CorpusFormat.bioc, CorpusFormat.label_studio),
    ("entity_types",): (CorpusFormat.brat, CorpusFormat.bioc, CorpusFormat.label_studio),
    ("discontinuous",): (CorpusFormat.brat, CorpusFormat.bioc),
    ("label_attribute",): (CorpusFormat.brat,),
    ("annotation",): (CorpusFormat.label_studio,),
}


def _refuse_options_not_for(ctx: typer.Context, fmt: CorpusFormat) -> None:
    """Refuse, in one message, the options given that `fmt` has no use for (rather than ignore them)."""
    not_for = {name: formats for names, formats in _FORMAT_OPTIONS.items() for name in names if fmt not in formats}
    given = given_options(ctx, not_for)
    if given:
        options = _listed([p.opts[0] for p in given])
        for_formats = _listed(sorted({f.value for p in given for f in not_for[p.name]}))
        one = len(given) == 1
        raise fail(f"{options} {'does' if one else 'do'} not apply to {fmt.value} input ({'it is' if one else 'they are'} "
                   f"for {for_formats} input): leave {'it' if one else 'them'} out")


def _listed(names: List[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return " and ".join(filter(None, [", ".join(names[:-1]), names[-1]]))


def _iter_docs(
    fmt: CorpusFormat, path: Path, spans_key: str, options: Dict[str, Any], report: ConversionReport
) -> Iterator[Doc]:
    """The documents of `path` in format `fmt`, one at a time, read with the command's options that
    apply to it; what the reader changes goes into `report`."""
    types = options["entity_types"]
    entity_types = None if types is None else [t.strip() for t in types.split(",") if t.strip()]
    common = dict(report=report, spans_key=spans_key)
    if fmt == CorpusFormat.label_studio:
        return iter_label_studio(path, make_bio_nlp(), text_key=options["text_key"], id_key=options["id_key"],
                                 entity_types=entity_types, offset_units=options["offset_units"].value,
                                 annotation=options["annotation"].value, **common)
    if fmt in (CorpusFormat.brat, CorpusFormat.bioc):
        kwargs = dict(discontinuous=options["discontinuous"].value, offset_units=options["offset_units"].value,
                      entity_types=entity_types, **common)
        if fmt == CorpusFormat.brat:
            return iter_brat(path, make_bio_nlp(), label_attribute=options["label_attribute"], **kwargs)
        return iter_bioc(path, make_bio_nlp(), **kwargs)
    if fmt == CorpusFormat.jsonl:
        return iter_jsonl(path, make_bio_nlp(), text_key=options["text_key"], id_key=options["id_key"] or "id",
                          entities_key=options["entities_key"], offset_units=options["offset_units"].value, **common)
    if fmt == CorpusFormat.pubtator:
        return iter_pubtator(path, make_bio_nlp(), **common)
    if fmt == CorpusFormat.jnlpba:
        return iter_jnlpba(path, make_bio_nlp().vocab, **common)
    documents = options["documents"]
    texts = read_pubtator_texts(documents) if documents is not None else None
    return iter_iob(
        path, make_bio_nlp().vocab, scheme=options["scheme"].value, n_sents=options["n_sents"], documents=texts,
        tag_column=options["tag_column"], label=options["label"], **common,
    )


def _progress(docs: Iterator[Doc], path: Path) -> Iterator[Doc]:
    """`docs`, with a bar of those converted and their rate on stderr where it is a terminal (tqdm's
    `disable=None`), gone when they end: the report follows."""
    from tqdm import tqdm

    return tqdm(docs, desc=f"converting {path.name}", unit=" docs", file=sys.stderr, disable=None, leave=False)


def _cannot_write(error: OSError) -> typer.Exit:
    """The error of an output that cannot be written, while converting or at the end: none is."""
    return fail(f"cannot write output: {error}; nothing written")


def _check_output_folders(folders: Dict[str, Optional[Path]]) -> None:
    """Refuse, before any work is done, an output folder of --shard-size (by its option's name) that
    could not be written, that holds anything but the files a conversion writes (it is replaced
    whole), that is a link, or that lies inside the other."""
    given = {what: path for what, path in folders.items() if path is not None}
    for what, path in given.items():
        if path.name in ("", ".", ".."):
            raise fail(f"{what} {path} names no folder of its own: give the folder by its name (corpus/train)")
        if path.is_symlink():
            raise fail(f"{what} {path} is a link (to {path.resolve()}), which the conversion would replace with "
                       "a folder: give the folder it links to")
        check_output_dir(path, what)
        other = not_written_by_writer(path) if path.is_dir() else None
        if other is not None:
            raise fail(f"{what} {path} holds {other.name}, which no conversion writes, and the conversion replaces "
                       "the folder whole: give a new folder, or one that `convert --shard-size` wrote")
        for other_what, other_path in given.items():
            if other_path.resolve() in path.resolve().parents:
                raise fail(f"{what} {path} is inside {other_what} {other_path}, which the conversion replaces "
                           "whole: give folders side by side")


@app.command()
def convert(
    ctx: typer.Context,
    fmt: CorpusFormat = typer.Argument(
        ..., metavar="FORMAT", help="Input format: jnlpba (Genia4*2.iob2 with ###MEDLINE: markers), "
        "pubtator (BC5CDR PubTator), iob (token<TAB>tag, IOB1/IOB2/BIOES), jsonl (one JSON object a "
        "line: the text and its entities by character offsets, code points, as Prodigy and doccano export), "
        "brat (standoff: NAME.txt with NAME.ann, or .a1 and .a2, as brat, INCEpTION and the BioNLP shared "
        "tasks write), bioc (BioC XML or JSON, as BioCreative's corpora and PubTator3 give them) or label-studio "
        "(Label Studio's JSON or JSON-MIN export of texts labelled with <Labels>)."
    ),
    input_path: Path = typer.Argument(
        ..., metavar="INPUT", help="Input file: plain text, .gz or .xz, or a pipe (<(zcat x.gz), /dev/stdin); for "
        "brat, a folder (read recursively, one document per text with its NAME.ann, or .a1 and .a2, its path as "
        "the id) or one .ann or .txt file."
    ),
    output: Path = typer.Argument(
        ..., metavar="OUTPUT", help="Output .spacy (DocBin) file; with --shard-size, a folder of them."
    ),
    dev_docs: Optional[int] = typer.Option(
        None, "--dev-docs", min=1, help="Write the LAST N documents of INPUT to --dev-output instead of OUTPUT "
        f"(jnlpba: {JNLPBA_DEV_DOCS} unless given, the dev split the pretraining text leaves out)."
    ),
    dev_output: Optional[Path] = typer.Option(
        None, "--dev-output", help="Output .spacy file for the --dev-docs documents."
    ),
    n_sents: int = typer.Option(
        1, "--n-sents", min=1, help="iob without document markers: sentences per Doc."
    ),
    documents: Optional[Path] = typer.Option(
        None, "--documents", help="iob without document markers: the PubTator file its sentences were cut "
        "from (BC5CDR's CDR_*.PubTator.txt for its IOB form). One Doc per abstract, with its PMID and "
        "the abstract's spacing (a run of whitespace as one space), in place of --n-sents chunks, which run "
        "across abstracts.",
    ),
    spans_key: Optional[str] = typer.Option(
        None, "--spans-key", help="doc.spans key for the entities (default: jnlpba, bc5cdr for "
        "pubtator, ents for the others). The bio_ner head with this key learns from them."
    ),
    ents_only: bool = typer.Option(
        False, "--ents-only", help="Write the entities to doc.ents alone, in no span group: every bio_ner head "
        "learns from them, each its own labels (the entities of several heads, as export-tasks writes doc.ents)."
    ),
    shard_size: int = typer.Option(
        0, "--shard-size", min=0, help="Write OUTPUT (and --dev-output) as a folder of .spacy files of at most N "
        "documents each, written as they are converted, where one file is held in memory until it is written: "
        "memory holds N documents at a time, and the --dev-docs ones (for a JSON file of one value, the value "
        "parsed too; an IOB file is read twice, for its scheme first). A folder is replaced whole. spaCy's Corpus "
        "(`spacy train --paths.train`) and this package's readers and commands take the folder as the corpus. "
        "0: one file."
    ),
    max_loss: float = typer.Option(
        0.005, "--max-loss", min=0.0, max=1.0, help="Fail (exit 1, nothing written) if more than this "
        "fraction of an output's entities is dropped or moved to other token boundaries."
    ),
    scheme: Scheme = typer.Option(
        Scheme.auto, "--scheme", help="Tagging scheme of iob input; auto detects it per file."
    ),
    tag_column: Optional[int] = typer.Option(
        None, "--tag-column", min=2, help="iob: the column of the tags, counted from 1 (default: the last). "
        "Needed where another column holds entity tags that differ, as in conlleval's token, gold, "
        "predicted: the conversion refuses to guess."
    ),
    text_key: str = typer.Option(
        "text", "--text-key", help="jsonl: the field of the text; label-studio: the task data's field of the text "
        "(the one its <Text value=\"$text\"> names)."
    ),
    id_key: Optional[str] = typer.Option(
        None, "--id-key", help="jsonl: the field of a document's id, if any (default: id); label-studio: the task "
        "data's field of the id (default: the task's id; export-tasks writes doc_id)."
    ),
    entities_key: str = typer.Option(
        "spans", "--entities-key", help="jsonl: the field of the entities, each {\"start\", \"end\", \"label\"} "
        "(Prodigy) or \\[start, end, label] (doccano: --entities-key label). Records whose \"answer\" is not "
        "\"accept\" (Prodigy's rejected and ignored ones) are skipped and counted."
    ),
    label: Optional[str] = typer.Option(
        None, "--label", help="iob: the entity label of bare B/I/O tags (BioBERT's NCBI-disease, BC2GM: "
        "--label Disease), which name none."
    ),
    entity_types: Optional[str] = typer.Option(
        None, "--entity-types", help="brat, bioc and label-studio: the labels to convert, comma-separated (default: "
        "all but brat events' triggers); the others are left out and counted."
    ),
    discontinuous: Discontinuous = typer.Option(
        "drop", "--discontinuous", help="brat and bioc: a mention of fragments with words between them is dropped (and "
        "counted as lost), or covered by one span from its first fragment to its last (counted as expanded). "
        "Fragments apart only by whitespace, as brat splits a mention at a line break, are always one span."
    ),
    label_attribute: Optional[str] = typer.Option(
        None, "--label-attribute", help="brat: the attribute whose value is a mention's label, where it has one "
        "(INCEpTION's export of its Named Entity layer writes \"T1 NamedEntity\" and \"A1 value T1 Disease\": "
        "--label-attribute value)."
    ),
    annotation: AnnotationChoice = typer.Option(
        "last", "--annotation", help="label-studio: of a task's several annotations, the one converted: the one "
        "updated last, or ground-truth, the one marked ground truth (JSON export only; Label Studio marks every "
        "annotation imported with a task so), else the one updated last. The others are skipped and counted."
    ),
    offset_units: OffsetUnits = typer.Option(
        "characters", "--offset-units", help="jsonl, brat, bioc and label-studio: what the offsets count, characters "
        "(code points, as Python and Label Studio count them) or UTF-16 units (as Java and JavaScript count: "
        "INCEpTION, BioC's Java tools, older Label Studio versions; an export whose offsets a browser computed may "
        "too). The two differ after a character outside the Basic Multilingual Plane (an emoji); a mismatch found "
        "says which would fit. brat and label-studio: auto reads each mention in the units in which its text fits "
        "(characters first; a corpus of both, annotated before and after a tool changed its units)."
    ),
    max_examples: int = typer.Option(
        10, "--max-examples", min=0, help="Entities listed of each kind of change (repaired, expanded, dropped, "
        "composite, duplicate, skipped, excluded), each with its line or document and why; the rest are counted. "
        "0 lists them all."
    ),
) -> None:
    """Convert a corpus to spaCy's DocBin format and print what was converted.

    Both doc.ents and doc.spans[SPANS_KEY] hold the entities. A table per
    output lists documents, sentences, tokens, entities per label, how many
    entities were repaired, expanded to token boundaries or dropped, and
    the first --max-examples of each kind.
    """
    _refuse_options_not_for(ctx, fmt)
    if offset_units.value == "auto" and fmt in (CorpusFormat.jsonl, CorpusFormat.bioc):
        raise fail(f"--offset-units auto needs each mention's text to tell its units by, which {fmt.value} input "
                   "does not give for all its offsets: give characters or utf-16")
    if dev_output is not None and dev_docs is None and fmt == CorpusFormat.jnlpba:
        dev_docs = JNLPBA_DEV_DOCS
    if (dev_docs is not None) != (dev_output is not None):
        raise fail("--dev-docs and --dev-output must be given together (for jnlpba input --dev-output alone "
                   f"holds out the standard {JNLPBA_DEV_DOCS})")
    if documents is not None and n_sents > 1:
        raise fail("give --documents or --n-sents, not both")
    if dev_output is not None and dev_output.resolve() == output.resolve():
        raise fail("--dev-output must differ from OUTPUT")
    refuse_outputs_read({"OUTPUT": output, "--dev-output": dev_output},
                        {"INPUT": input_path, "--documents": documents}, "the conversion")
    if shard_size:
        _check_output_folders({"OUTPUT": output, "--dev-output": dev_output})
    else:
        for path, what in ((output, "OUTPUT"), (dev_output, "--dev-output")):
            if path is not None:
                check_output_file(path, what, hint_for_folder=", or --shard-size to write a folder of files")
    if ents_only and spans_key is not None:
        raise fail("give --spans-key or --ents-only, not both")
    key = spans_key or _DEFAULT_KEYS[fmt]
    options = dict(n_sents=n_sents, scheme=scheme, documents=documents, tag_column=tag_column, label=label,
                   text_key=text_key, id_key=id_key, entities_key=entities_key, entity_types=entity_types,
                   discontinuous=discontinuous, label_attribute=label_attribute, offset_units=offset_units,
                   annotation=annotation)
    report = ConversionReport(source=str(input_path))
    writers = [DocBinWriter(output, shard_size)] + ([DocBinWriter(dev_output, shard_size)] if dev_output else [])
    parts = [ConversionReport(source=str(input_path)) for _ in writers]  # what each output holds

    def write(part: int, doc: Doc) -> None:
        parts[part].count_doc(doc, key)
        if ents_only:
            doc.spans.pop(key, None)
        try:
            writers[part].add(doc)  # a folder's file, written once full
        except OSError as e:
            raise _cannot_write(e) from None

    try:
        try:
            with warnings_on_stderr():
                docs = _progress(_iter_docs(fmt, input_path, key, options, report), input_path)
                for is_dev, doc in split_dev_as_read(docs, dev_docs or 0, name="--dev-docs"):
                    write(int(is_dev), doc)
        except ConversionError as e:
            raise fail(str(e)) from None
        except DevSplitError as e:
            raise fail(f"{input_path}: {e}") from None
        if fmt == CorpusFormat.jnlpba and dev_output is not None and dev_docs > JNLPBA_DEV_DOCS:
            typer.echo(
                f"Warning: --dev-docs {dev_docs}: the pretraining text leaves out the standard {JNLPBA_DEV_DOCS} "
                f"only (pretrain's task text, and the embedded collection's filter): the {dev_docs - JNLPBA_DEV_DOCS} "
                "abstracts before them are in it, so an adapted encoder has seen part of this dev set.",
                err=True,
            )
        start = 0
        for part in parts:  # each output's documents follow the one's before
            part.issues = report.issues_of_docs(start, start + part.documents)
            start += part.documents
        for writer, part in zip(writers, parts):
            typer.echo(part.table(title=str(writer.path), max_examples=max_examples or None))
            typer.echo("")
            if not part.entities:
                typer.echo(f"Warning: {writer.path} holds no entity: no head learns anything from it.", err=True)
        for writer, part in zip(writers, parts):
            if part.loss_fraction > max_loss:
                raise fail(
                    f"{writer.path}: {part.loss_fraction:.3%} of the entities would be lost "
                    f"(more than --max-loss {max_loss:.3%}); nothing written"
                )
        try:
            commit_docbins(writers)  # all or none
        except OSError as e:
            raise _cannot_write(e) from None
    finally:
        for writer in writers:
            writer.discard()
    typer.echo("Wrote " + ", ".join(f"{writer.path} ({writer.described()})" for writer in writers))
    if ents_only:
        typer.echo("The entities are in doc.ents alone: every bio_ner head learns from them, each its own labels.")
    else:
        typer.echo(f"The entities are in doc.ents and doc.spans[{key!r}]: the bio_ner head with spans_key "
                   f"{key!r} learns from them (--spans-key names another; --ents-only: every head).")
