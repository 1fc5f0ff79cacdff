"""JSON Lines corpora with character offsets (Prodigy, doccano, your own) to spaCy Docs.

One Doc per line, a JSON object with the text and its entities:

    {"id": "doc1", "text": "Cisplatin nephrotoxicity.", "spans": [{"start": 0, "end": 9, "label": "Chemical"}]}

as Prodigy exports them (`db-out`); an entity may also be a list
`[start, end, label]` (doccano's "label" field: `entities_key="label"`), and
`start_offset`/`end_offset` (doccano's newer export) name the offsets too.
Offsets count characters (code points) of the text, as Python's `str` does,
or with `offset_units="utf-16"` UTF-16 units, as JavaScript does (an export
whose offsets a browser computed may count them): the two differ after a
character outside the Basic Multilingual Plane (an emoji, "\U0001d6fc").
The text is tokenized with the given nlp (the BioTokenizer) and the entities
are placed on its tokens as `offsets.place_mentions` says (expanded to token
boundaries, the longer of overlapping ones kept, each change reported).
Sentences are set by the BioTokenizer's rules, never inside an entity.

Prodigy exports its rejected and ignored examples too: a record whose
"answer" is not "accept" is left out, and counted as "skipped". Its binary
annotations (`ner.teach`: "_view_id" "ner") mark one suggested span, not a
text's entities, and are refused. Records that repeat an earlier record's
text are kept, and warned of (one text in train and dev). A line that is no
such object, or an entity that is no span of its text (or whose "text", where
it has one, is not the text's at its offsets), is an error naming the line
(and the offset units that would fit), and a file where no record has the
entities field (a wrong `entities_key`) one naming the fields the records
have: a corpus is not converted with records or entities missing.

Written here: spaCy's `spacy convert` reads no JSON Lines with character
offsets, and Prodigy's `data-to-spacy` needs Prodigy.
"""

import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set, Tuple

from spacy.language import Language
from spacy.tokens import Doc

from .iob import DEFAULT_SPANS_KEY
from .offsets import AnnotationSelection, Mention, OffsetUnits, annotated_doc
from .report import (
    SKIPPED,
    TEXT_IN_TRAIN_AND_DEV,
    ConversionError,
    ConversionReport,
    Issue,
    read_all,
    warn_of_repeats,
)
from .text import PathLike, iter_lines, json_id, record_text, text_digest

# Prodigy's answer of an example that holds its annotation; without an "answer", a record is read.
ACCEPTED = "accept"


def read_jsonl(
    path: PathLike,
    nlp: Language,
    *,
    spans_key: str = DEFAULT_SPANS_KEY,
    text_key: str = "text",
    id_key: str = "id",
    entities_key: str = "spans",
    offset_units: OffsetUnits = "characters",
) -> Tuple[List[Doc], ConversionReport]:
    """Read a JSON Lines file of texts and their entities by character offsets: one Doc per
    accepted record, its `id_key` value (if any) as `doc.user_data["pmid"]`, as the other readers
    keep a document's id (see the module docstring for the record's form); `iter_jsonl` gives them
    one at a time."""
    return read_all(iter_jsonl, path, nlp, spans_key=spans_key, text_key=text_key, id_key=id_key,
                    entities_key=entities_key, offset_units=offset_units)


def iter_jsonl(
    path: PathLike,
    nlp: Language,
    *,
    report: ConversionReport,
    spans_key: str = DEFAULT_SPANS_KEY,
    text_key: str = "text",
    id_key: str = "id",
    entities_key: str = "spans",
    offset_units: OffsetUnits = "characters",
) -> Iterator[Doc]:
    """`read_jsonl`'s documents, each as its line is read, and what was changed in `report`."""
    path = Path(path)
    selection = AnnotationSelection(offset_units=offset_units, auto=False)
    n_docs = 0
    keys: Set[str] = set()  # the fields of the records read
    first_line: Dict[bytes, int] = {}  # the first line of each text (`text_digest`)
    repeated: List[Tuple[int, int]] = []  # (line, the line of its text's first record)
    for lineno, line in enumerate(iter_lines(path), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConversionError(f"{where}: not JSON ({e.msg} at column {e.colno}; one JSON object a line)") from None
        if not isinstance(record, dict):
            raise ConversionError(f"{where}: a JSON {type(record).__name__}, not an object")
        keys.update(record)
        answer = record.get("answer", ACCEPTED)
        if answer != ACCEPTED:
            # Counted with the document before it (the first, before any), so that a split keeps it.
            report.issues.append(Issue(SKIPPED, where, f"answer {answer!r}", doc_index=max(n_docs - 1, 0)))
            continue
        if record.get("_view_id") == "ner":
            raise ConversionError(f"{where}: a binary annotation (Prodigy's ner.teach): it accepts or rejects one "
                                  "suggested span, and says nothing of the text's other entities; convert "
                                  "ner.manual or ner.correct annotations")
        text = record_text(record, text_key, where)
        doc_id = json_id(record.get(id_key))
        if doc_id is None and record.get(id_key) is not None and not isinstance(record.get(id_key), str):
            raise ConversionError(f"{where}: the {id_key!r} field is no string or integer: "
                                  f"{json.dumps(record.get(id_key))[:40]}")
        if doc_id is not None:
            where = f"{where} {id_key} {doc_id}"
        first = first_line.setdefault(text_digest(text), lineno)
        if first != lineno:
            repeated.append((lineno, first))
        mentions = [_mention(entity, text, f"{where} entity {k}", selection, report, n_docs) for k, entity in
                    enumerate(_entities(record, entities_key, where), start=1)]
        yield annotated_doc(nlp, text, mentions, report, n_docs, spans_key, where, doc_id=doc_id)
        n_docs += 1
    if not n_docs:
        raise ConversionError(f"{path}:1: no record to convert" + (f" ({len(report.of_kind(SKIPPED))} not accepted)"
                                                                    if report.issues else ""))
    if entities_key not in keys:
        raise ConversionError(f"{path}: no record has a {entities_key!r} field, the entities: name theirs with "
                              f"--entities-key (the records' fields: {', '.join(sorted(keys))})")
    warn_of_repeats(str(path), "record", [f"line {line}, as line {first}" for line, first in repeated], "the text",
                    f"{TEXT_IN_TRAIN_AND_DEV}; merge them first (Prodigy's review recipe)")


def _entities(record: dict, entities_key: str, where: str) -> List[Any]:
    """The record's entity list; a record without the field has none."""
    entities = record.get(entities_key, [])
    if entities is None:
        return []
    if not isinstance(entities, list):
        raise ConversionError(f"{where}: {entities_key!r} is a {type(entities).__name__}, not a list of entities")
    return entities


def _mention(entity: Any, text: str, where: str, selection: AnnotationSelection, report: ConversionReport,
             doc_index: int) -> Mention:
    """An entity of the record, {"start", "end", "label"} (and its "text", where given, which must
    be the text's at its offsets) or [start, end, label], as a Mention of `text`."""
    given_text = None
    if isinstance(entity, dict):
        start = entity.get("start", entity.get("start_offset"))
        end = entity.get("end", entity.get("end_offset"))
        label = entity.get("label")
        given_text = entity.get("text") if isinstance(entity.get("text"), str) else None
    elif isinstance(entity, list) and len(entity) == 3:
        start, end, label = entity
    else:
        raise ConversionError(f"{where}: {json.dumps(entity)[:60]} is no entity "
                              '({"start": ..., "end": ..., "label": ...} or [start, end, label])')
    if not (type(start) is int and type(end) is int):
        raise ConversionError(f"{where}: offsets {start!r}-{end!r} are no integers")
    if not isinstance(label, str) or not label.strip():
        raise ConversionError(f"{where}: no label")
    mention = selection.mention(text, [(start, end)], label.strip(), where, report, doc_index, given_text=given_text)
    assert mention is not None  # one fragment: never discontinuous
    return mention
