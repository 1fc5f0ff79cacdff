"""Label Studio exports of texts labelled with named entities to spaCy Docs.

Label Studio's JSON export is a list of tasks, each with its data, the
annotations people made and the predictions (pre-annotations) it was given:

    [{"id": 7, "data": {"text": "Cisplatin nephrotoxicity."},
      "annotations": [{"id": 3, "was_cancelled": false, "ground_truth": false,
                       "updated_at": "2026-12-07T10:00:00Z",
                       "result": [{"id": "a1", "type": "labels", "from_name": "label", "to_name": "text",
                                   "value": {"start": 0, "end": 9, "text": "Cisplatin",
                                             "labels": ["Chemical"]}}]}],
      "predictions": []}]

One Doc per annotated task, its text `data[text_key]` (the field its
`<Text value="$text">` names), its id (the task's, or `data[id_key]`) as
`doc.user_data["pmid"]`, as the other readers keep a document's id. Which
annotation:

- A task annotated by several people has an annotation of each: one is
  converted, the one updated last, or with `annotation="ground-truth"` the
  one marked ground truth (else the one updated last); the others are
  skipped and counted, and warned of (merging annotators' work is a review,
  done in Label Studio). Updated last is the default because Label Studio
  marks every annotation imported with a task as ground truth: a curator's
  correction, made after, is not.
- A cancelled annotation ("skip" in Label Studio) is skipped and counted; so
  is a task without annotations: predictions are a model's, not annotations
  (the export lists them as objects, or by their ids).

A result of type "labels" is an entity for each of its labels, its text
checked against the task's text at its offsets (a mismatch is an error that
says when the other offset units would fit); relations are counted and
ignored; other results (choices, text areas, ratings) and entity types not
asked for (`entity_types`) are left out and counted ("excluded"). HyperText
and paragraph labels are refused: they give XPaths or dialogue turns, no
offsets of one text. The mentions are then placed on the BioTokenizer's
tokens as `offsets.place_mentions` says (expanded to token boundaries, the
longer of overlapping ones kept, each change reported); sentences by the
tokenizer's rules, never inside an entity.

Label Studio's JSON-MIN export (a flat record per annotation: the task's data
fields, its id, and under each Labels control's name a list of
{"start", "end", "text", "labels"}) is read too: the records of one task
(the same id and text) are its annotations, and one without an
`annotation_id` is a task not annotated. It does not say which annotation is
the ground truth. A document id given twice is warned of (two exports
joined: one text could land in train and dev).

Offsets count characters (code points), as Label Studio's editor has since it
stopped counting JavaScript's UTF-16 units (label-studio#1559); an export of
an older version counts UTF-16 units (`offset_units="utf-16"`), and a project
labelled before and after the change counts both (`offset_units="auto"`: each
region read in the units its text fits). The two differ after a character
outside the Basic Multilingual Plane.

Written here: Label Studio's own converter (label-studio-sdk) writes no spaCy
format; its CoNLL export splits the text at whitespace (a mention "IL-2" of
"IL-2-induced" becomes the whole word, checked with label-studio-converter
0.0.59) and writes tasks nobody annotated as texts without entities.
"""

import json
import re
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Literal, Optional, Sequence, Set, Tuple, get_args

from spacy.language import Language
from spacy.tokens import Doc

from ..messages import counted
from .iob import DEFAULT_SPANS_KEY
from .offsets import AnnotationSelection, Mention, MentionUnits, annotated_doc
from .report import (
    EXCLUDED,
    RELATION,
    SKIPPED,
    TEXT_IN_TRAIN_AND_DEV,
    ConversionError,
    ConversionReport,
    Issue,
    read_all,
    warn_of_repeats,
)
from .text import PathLike, json_id, json_objects, iter_json_values, record_text, text_digest

# The data field of the document id in the tasks that `python -m spacy_bioner export-tasks` writes.
EXPORTED_ID_KEY = "doc_id"
AnnotationChoice = Literal["last", "ground-truth"]
ANNOTATION_CHOICES = get_args(AnnotationChoice)
# Result types that give no character offsets of the task's text, and what they give instead.
_NO_OFFSETS = {
    "hypertextlabels": "HyperText labels give XPaths into HTML",
    "paragraphlabels": "paragraph labels give offsets inside dialogue turns",
}
# A task's text that is a reference to a file (`<Text valueType="url">`), not the text.
_FILE_REFERENCE = re.compile(r"(?:[a-z][a-z0-9+.-]*://|/data/)\S*")


@dataclass
class _Annotation:
    """One person's annotation of a task, as far as the conversion reads it."""

    id: str
    results: List[Dict[str, Any]]
    cancelled: bool = False
    ground_truth: bool = False
    updated_at: Optional[datetime] = None  # None where the export does not say


@dataclass
class _Task:
    id: Optional[str]
    where: str  # the file, and the task's id or place in it
    data: Dict[str, Any]
    annotations: List[_Annotation] = field(default_factory=list)
    predictions: int = 0
    ground_truth_known: bool = True  # False in JSON-MIN, which leaves the mark out


def read_label_studio(
    path: PathLike,
    nlp: Language,
    *,
    spans_key: str = DEFAULT_SPANS_KEY,
    text_key: str = "text",
    id_key: Optional[str] = None,
    entity_types: Optional[Sequence[str]] = None,
    offset_units: MentionUnits = "characters",
    annotation: AnnotationChoice = "last",
) -> Tuple[List[Doc], ConversionReport]:
    """Read a Label Studio JSON (or JSON-MIN) export (plain, .gz or .xz): one Doc per annotated task
    (see the module docstring for which annotation, and what of it, is read); `iter_label_studio` gives
    them one at a time."""
    return read_all(iter_label_studio, path, nlp, spans_key=spans_key, text_key=text_key, id_key=id_key,
                    entity_types=entity_types, offset_units=offset_units, annotation=annotation)


def iter_label_studio(
    path: PathLike,
    nlp: Language,
    *,
    report: ConversionReport,
    spans_key: str = DEFAULT_SPANS_KEY,
    text_key: str = "text",
    id_key: Optional[str] = None,
    entity_types: Optional[Sequence[str]] = None,
    offset_units: MentionUnits = "characters",
    annotation: AnnotationChoice = "last",
) -> Iterator[Doc]:
    """`read_label_studio`'s documents, each as its task is read, and what was changed in `report`."""
    if annotation not in ANNOTATION_CHOICES:
        raise ValueError(f"annotation must be one of {', '.join(ANNOTATION_CHOICES)}, not {annotation!r}")
    selection = AnnotationSelection(entity_types, offset_units=offset_units)
    path = Path(path)
    n_docs = 0
    first_task: Dict[bytes, str] = {}  # the first task of each text (`text_digest`)
    repeated: List[Tuple[str, str]] = []  # (a task, the first task of its text)
    annotated_again: List[str] = []  # the tasks with several annotations
    targets: Dict[str, str] = {}  # the text object the results label (their to_name) -> where first seen
    ids: Set[str] = set()  # the document ids converted
    exported_ids = 0  # tasks with a data field of export-tasks' document id, where --id-key is not given
    repeated_ids: List[str] = []  # the tasks of a document id converted before
    for task in _tasks(path, text_key):
        chosen = _chosen_annotation(task, annotation, report, n_docs, annotated_again)
        if chosen is None:
            continue
        if text_key not in task.data:
            fields = ", ".join(name for name, value in task.data.items() if isinstance(value, str)) or "none"
            raise ConversionError(f"{task.where} data: no {text_key!r} field (the text; its fields of text: {fields}): "
                                  "--text-key names the one its <Text value=\"$...\"> shows")
        text = record_text(task.data, text_key, f"{task.where} data")
        if _FILE_REFERENCE.fullmatch(text):
            raise ConversionError(f"{task.where}: the text {text[:60]!r} is a reference to a file, not the text "
                                  "(a <Text valueType=\"url\">): put the texts in the tasks' data")
        where = f"{task.where} annotation {chosen.id}"
        mentions = _mentions(chosen, text, where, selection, report, n_docs, targets)
        first = first_task.setdefault(text_digest(text), task.where)
        if first != task.where:
            repeated.append((task.where, first))
        doc_id = task.id if id_key is None else _data_id(task, id_key)
        exported_ids += id_key is None and EXPORTED_ID_KEY in task.data
        if doc_id is not None:
            if doc_id in ids:
                repeated_ids.append(task.where)
            ids.add(doc_id)
        yield annotated_doc(nlp, text, mentions, report, n_docs, spans_key, where, doc_id=doc_id)
        n_docs += 1
    if not n_docs:
        skipped = len(report.of_kind(SKIPPED))
        raise ConversionError(f"{path}: no annotated task to convert" + (
            f" ({counted(skipped, 'task or annotation')} skipped: not annotated, or cancelled)" if skipped else ""))
    if annotated_again:
        many = len(annotated_again) > 1
        rule = ("the one marked ground truth, or else the one updated last" if annotation == "ground-truth" else
                "the one updated last (--annotation ground-truth: the one marked ground truth, as Label Studio marks "
                "each annotation imported with a task)")
        warnings.warn(f"{path}: {counted(len(annotated_again), 'task')} {'have' if many else 'has'} several "
                      f"annotations ({annotated_again[0]}): each is converted from {rule}; the others are skipped "
                      "and counted")
    if exported_ids:
        warnings.warn(f"{path}: {counted(exported_ids, 'task')} {'has' if exported_ids == 1 else 'have'} the document "
                      f"id that export-tasks writes in their data, but the documents take Label Studio's task ids: "
                      f"--id-key {EXPORTED_ID_KEY} takes those")
    warn_of_repeats(str(path), "task", repeated_ids, "the document id",
                    "the id no longer tells them apart (exports of two projects joined?); --id-key names a data "
                    "field of unique ids")
    warn_of_repeats(str(path), "task", [f"{where}, as {first}" for where, first in repeated], "the text",
                    f"{TEXT_IN_TRAIN_AND_DEV}; remove the duplicates in Label Studio")
    selection.warn_of_units(str(path))
    selection.warn_of_types_not_found(str(path))


def _data_id(task: _Task, id_key: str) -> str:
    """The document id in the task's data field `id_key`."""
    doc_id = json_id(task.data.get(id_key))
    if doc_id is None:
        what = "no" if id_key not in task.data else f"a {json.dumps(task.data.get(id_key))[:40]} as its"
        raise ConversionError(f"{task.where} data: {what} {id_key!r} field (the document id; --id-key names "
                              "another, or leave it out for the task's id)")
    return doc_id


def _chosen_annotation(task: _Task, choice: AnnotationChoice, report: ConversionReport, doc_index: int,
                       annotated_again: List[str]) -> Optional[_Annotation]:
    """The task's annotation to convert (see the module docstring); those left out go into `report`,
    counted with the task's document, or where it has none, with the document before it (the first,
    before any), so that a split keeps them."""
    live = [annotation for annotation in task.annotations if not annotation.cancelled]
    counted_with = doc_index if live else max(doc_index - 1, 0)
    for annotation in task.annotations:
        if annotation.cancelled:
            report.issues.append(Issue(SKIPPED, f"{task.where} annotation {annotation.id}", "cancelled",
                                       doc_index=counted_with))
    if not task.annotations:
        predictions = f" ({counted(task.predictions, 'prediction')}, not read)" if task.predictions else ""
        why = "not annotated" + predictions
        report.issues.append(Issue(SKIPPED, task.where, why, doc_index=counted_with))
    if not live:
        return None
    if choice == "ground-truth" and not task.ground_truth_known and len(live) > 1:
        raise ConversionError(f"{task.where}: several annotations, and a JSON-MIN export does not say which is the "
                              "ground truth: export JSON for --annotation ground-truth")
    ground_truth = [annotation for annotation in live if annotation.ground_truth] if choice == "ground-truth" else []
    candidates = ground_truth or live
    dated = [annotation for annotation in candidates if annotation.updated_at is not None]
    # Ties (a bulk import's) and undated annotations: the first in the export.
    chosen = max(dated, key=lambda annotation: annotation.updated_at) if dated else candidates[0]
    why = "marked ground truth" if ground_truth else "the one updated last" if dated else "the first (no dates)"
    for annotation in live:
        if annotation is not chosen:
            report.issues.append(Issue(SKIPPED, f"{task.where} annotation {annotation.id}",
                                       f"another annotation of the task: {chosen.id}, {why}, is converted",
                                       doc_index=doc_index))
    if len(live) > 1:
        annotated_again.append(task.where)
    return chosen


def _mentions(annotation: _Annotation, text: str, where: str, selection: AnnotationSelection,
              report: ConversionReport, doc_index: int, targets: Dict[str, str]) -> List[Mention]:
    """The entities of the annotation's results as Mentions of `text`, as `selection` chooses them;
    what is left out goes into `report`."""
    mentions = []
    for number, result in enumerate(annotation.results, start=1):
        result_where = f"{where} result {result.get('id') or number}"
        kind = str(result.get("type") or "").lower()
        if kind == "relation":
            report.issues.append(Issue(RELATION, result_where, "relation ignored", doc_index=doc_index))
            continue
        if kind in _NO_OFFSETS:
            raise ConversionError(f"{result_where}: {_NO_OFFSETS[kind]}, not offsets of a text: label texts with "
                                  "<Labels> on a <Text> tag")
        if kind != "labels":
            report.issues.append(Issue(EXCLUDED, result_where, f"a {kind or 'typeless'} result, no entity",
                                       doc_index=doc_index))
            continue
        _check_target(result, result_where, targets)
        value = result.get("value")
        labels = value.get("labels") if isinstance(value, dict) else None
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x.strip() for x in labels):
            raise ConversionError(f"{result_where}: no labels (a \"labels\" result's value has "
                                  "{\"start\", \"end\", \"labels\": [...]})")
        start, end = value.get("start"), value.get("end")
        if type(start) is not int or type(end) is not int:
            raise ConversionError(f"{result_where}: offsets {json.dumps(start)}-{json.dumps(end)} are no character "
                                  "offsets of the text")
        given_text = value.get("text") if isinstance(value.get("text"), str) else None
        for label in dict.fromkeys(label.strip() for label in labels):
            if selection.keeps_type(label, result_where, report, doc_index):
                mentions.append(selection.mention(text, [(start, end)], label, result_where, report, doc_index,
                                                  given_text=given_text))
    return mentions


def _check_target(result: Dict[str, Any], where: str, targets: Dict[str, str]) -> None:
    """Refuse results that label another text object than the results before them: the export does
    not say which data field each object shows."""
    target = result.get("to_name")
    if not isinstance(target, str):
        return
    targets.setdefault(target, where)
    if len(targets) > 1:
        other = next(name for name in targets if name != target)
        raise ConversionError(f"{where}: labels the text object {target!r}, where {targets[other]} labels "
                              f"{other!r}: a project that labels several texts of a task is not read")


# --- the export -----------------------------------------------------------------------------------


def _tasks(path: Path, text_key: str) -> Iterator[_Task]:
    """The tasks of a JSON or JSON-MIN export (a list, one task, or JSON Lines of either), in their
    order; JSON-MIN's records of one task (the same id and text) merged into it."""
    merged: Dict[Tuple[str, Optional[str]], _Task] = {}  # JSON-MIN's tasks by id and text, in their order
    position = 0
    for value, where in iter_json_values(path):
        for item in value if isinstance(value, list) else [value]:
            position += 1
            if not isinstance(item, dict):
                raise ConversionError(f"{where}: item {position} is a JSON {type(item).__name__}, not a task")
            task_id = json_id(item.get("id"))
            if task_id is None and item.get("id") is not None and not isinstance(item.get("id"), str):
                raise ConversionError(f"{where}: item {position}'s id is no string or integer: "
                                      f"{json.dumps(item.get('id'))[:40]}")
            named = f"{path} task {task_id}" if task_id is not None else f"{where} item {position}"
            # JSON-MIN's data fields are at the top, and may include one named "data".
            if "annotation_id" in item:
                _merge_min_record(item, task_id, named, text_key, merged)
            elif "data" in item:
                yield _task(item, task_id, named)
            else:
                raise ConversionError(
                    f"{named}: neither a task of Label Studio's JSON export (with \"data\" and \"annotations\") "
                    "nor a record of its JSON-MIN export (with \"annotation_id\"); for JSON Lines of texts with "
                    "entities by offsets, use the jsonl format")
    yield from merged.values()


def _task(item: Dict[str, Any], task_id: Optional[str], where: str) -> _Task:
    """A task of the JSON export (older versions call its annotations "completions")."""
    data = item["data"]
    if not isinstance(data, dict):
        raise ConversionError(f"{where}: \"data\" is a JSON {type(data).__name__}, not an object of fields")
    annotations = json_objects(item, "annotations" if "annotations" in item else "completions", where)
    predictions = item.get("predictions") or []
    if not isinstance(predictions, list):
        raise ConversionError(f"{where}: 'predictions' is no list (of predictions or their ids)")
    task = _Task(task_id, where, data, predictions=len(predictions))
    for number, annotation in enumerate(annotations, start=1):
        annotation_id = annotation.get("id", f"#{number}")
        task.annotations.append(_Annotation(
            str(annotation_id), json_objects(annotation, "result", f"{where} annotation {annotation_id}"),
            cancelled=bool(annotation.get("was_cancelled") or annotation.get("skipped")),
            ground_truth=bool(annotation.get("ground_truth")),
            updated_at=_updated_at(annotation, f"{where} annotation {annotation_id}"),
        ))
    return task


def _merge_min_record(record: Dict[str, Any], task_id: Optional[str], where: str, text_key: str,
                      merged: Dict[Tuple[str, Optional[str]], _Task]) -> None:
    """A JSON-MIN record, as an annotation of its task (a record without an annotation_id is a task
    not annotated). Its entities are the lists of regions with "labels", one per Labels control;
    regions of HyperText or paragraph labels are refused, as in the JSON export. Its other results
    (choices, text areas) cannot be told from the task's data fields, and are not counted."""
    text = record.get(text_key)
    key = (where if task_id is None else task_id, text if isinstance(text, str) else None)
    data = {name: value for name, value in record.items() if name != "id"}
    task = merged.setdefault(key, _Task(task_id, where, data, ground_truth_known=False))
    if record.get("annotation_id") is None:
        return
    annotation_where = f"{where} annotation {record['annotation_id']}"
    results = []
    for name, regions in record.items():
        kind = _regions_kind(regions)
        if kind in _NO_OFFSETS:
            raise ConversionError(f"{annotation_where} {name}: {_NO_OFFSETS[kind]}, not offsets of a text: label "
                                  "texts with <Labels> on a <Text> tag")
        if kind == "labels":
            results += [{"type": "labels", "from_name": name, "id": f"{name}[{i}]", "value": region}
                        for i, region in enumerate(regions)]
    task.annotations.append(_Annotation(str(record["annotation_id"]), results,
                                        updated_at=_updated_at(record, annotation_where)))


def _regions_kind(value: Any) -> Optional[str]:
    """The kind of a JSON-MIN field that holds a control's regions ("labels", "hypertextlabels",
    ...: the key of their labels), None for any other field."""
    if not isinstance(value, list) or not value or not all(isinstance(x, dict) for x in value):
        return None
    kinds = {key for region in value for key in ("labels", *_NO_OFFSETS) if key in region}
    return kinds.pop() if len(kinds) == 1 else None


def _updated_at(annotation: Dict[str, Any], where: str) -> Optional[datetime]:
    """When the annotation was last updated (or else created), as an aware datetime (naive ones read
    as UTC); None where the export does not say."""
    stamp = annotation.get("updated_at") or annotation.get("created_at")
    if not stamp:
        return None
    text = str(stamp)
    try:
        # Python before 3.11 reads no "Z" for UTC.
        when = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text)
    except ValueError:
        raise ConversionError(f"{where}: {json.dumps(stamp)[:40]} is no ISO 8601 time (updated_at)") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)
