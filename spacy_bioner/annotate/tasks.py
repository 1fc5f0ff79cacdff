"""An annotation run's documents and entities as tasks for an annotation tool (model-assisted labelling).

`python -m spacy_bioner export-tasks RUN_DIR OUTPUT --tool TOOL` reads the
tables `annotate` wrote and writes each annotated document, with the
pipeline's entities pre-highlighted, in a form the tool imports, so that
annotators correct a model's entities rather than label from nothing; the
corrected export then converts back (`convert`) for training:

- `label-studio`: a JSON list of tasks, the text and the record's id in
  `data`, the entities as one prediction of the pipeline (`model_version`),
  a `labels` region each with its score; the prediction's score is the
  lowest of its entities' (Label Studio's Data Manager sorts tasks by it,
  the least sure first). The regions name the project's `<Labels>` control
  and `<Text>` object (`from_name`, `to_name`): `labeling_config` writes a
  config that has them. Its JSON export reads back with
  `convert label-studio --id-key doc_id`.
- `prodigy`: JSON Lines of `{"text", "spans", "meta"}` (`ner.manual` shows
  the spans highlighted); `db-out` reads back with `convert jsonl`.
- `doccano`: JSON Lines of `{"text", "label": [[start, end, label]]}`, its
  sequence-labelling import; its export reads back with
  `convert jsonl --entities-key label`.

The entities are a document's `doc.ents` (the table's `in_ents` rows: the
heads' spans without overlaps), which convert back with `--ents-only`, gold
for every head; or one head's spans (`spans_key`), back with `--spans-key`. Offsets
are the tables', code points of the text, as all three tools count. A
rejected record has no text to annotate: it is left out (the run's rejects
table lists it).

Written here: none of the tools reads spaCy's output, and Label Studio's
own converter (label-studio-sdk) goes the other way, from its exports.
"""

import configparser
import functools
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Literal, Optional, Tuple, get_args
from xml.sax.saxutils import quoteattr

from spacy import util

from ..corpora.label_studio import EXPORTED_ID_KEY
from ..files import atomic_write_all
from .output import RUN_FILE, SUMMARY_FILE, read_table, shard_names

Tool = Literal["label-studio", "prodigy", "doccano"]
TOOLS = get_args(Tool)


class TasksError(Exception):
    """The run cannot be exported as asked (the message says why)."""


@dataclass
class ExportedTasks:
    """What an export wrote: tasks, entities per label, and the documents left out."""

    tasks: int = 0
    entities: Counter = field(default_factory=Counter)
    rejected: int = 0
    complete: bool = True  # whether the run had finished
    labels: List[str] = field(default_factory=list)  # the pipeline's labels, where its meta.json says, and those found


def export_tasks(
    run_dir: Path,
    output: Path,
    tool: Tool,
    *,
    spans_key: Optional[str] = None,
    from_name: str = "label",
    to_name: str = "text",
    config: Optional[Path] = None,
) -> ExportedTasks:
    """Write the annotated documents of the run in `run_dir` to `output` as `tool`'s tasks (see the
    module docstring), and a Label Studio labeling config with the pipeline's labels to `config` if
    given: both or neither, each atomically, their folders made; what was written is returned."""
    if tool not in TOOLS:
        raise ValueError(f"tool must be one of {', '.join(TOOLS)}, not {tool!r}")
    run = _run(run_dir)
    heads = run["model"].get("heads", [])
    if spans_key is not None and spans_key not in heads:
        raise TasksError(f"--spans-key {spans_key!r}: the run's pipeline has no head of that key (its heads: "
                         f"{', '.join(heads) or 'none'})")
    exported = ExportedTasks(complete=_complete(run_dir))
    model = run["model"]
    model_version = f"{model.get('name', '')} {model.get('version', '')} ({model.get('digest', '')[:12]})"

    make_task = functools.partial(_label_studio_task, model_version=model_version, from_name=from_name,
                                  to_name=to_name) if tool == "label-studio" else _TASKS[tool]
    as_list = tool == "label-studio"  # a JSON list, a task a line; the others JSON Lines

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf8") as f:
            f.write("[" if as_list else "")
            for document, entities in _documents(run_dir, run["format"], spans_key, exported):
                line = json.dumps(make_task(document, entities), ensure_ascii=False)
                f.write((("\n" if not exported.tasks else ",\n") + line) if as_list else (line + "\n"))
                exported.tasks += 1
                exported.entities.update(entity["label"] for entity in entities)
            f.write("\n]\n" if as_list else "")

    def write_config(tmp: Path) -> None:  # after the tasks, whose labels are among its labels
        tmp.write_text(labeling_config(labels(), from_name, to_name), encoding="utf8")

    def labels() -> List[str]:
        return sorted(set(_pipeline_labels(model.get("model", ""), spans_key)) | set(exported.entities))

    for path in (output, config):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_all([(output, write)] + ([(config, write_config)] if config is not None else []))
    exported.labels = labels()
    return exported


def labeling_config(labels: List[str], from_name: str = "label", to_name: str = "text") -> str:
    """A Label Studio labeling config of a text (`data.text`) labelled with `labels`."""
    choices = "\n".join(f"    <Label value={quoteattr(label)}/>" for label in labels)
    return (f"<View>\n  <Labels name={quoteattr(from_name)} toName={quoteattr(to_name)}>\n{choices}\n  </Labels>\n"
            f"  <Text name={quoteattr(to_name)} value=\"$text\"/>\n</View>\n")


def _run(run_dir: Path) -> Dict[str, Any]:
    """The run recorded in `run_dir` (its run.json)."""
    try:
        run = json.loads((run_dir / RUN_FILE).read_text(encoding="utf8"))
    except FileNotFoundError:
        raise TasksError(f"{run_dir} holds no annotation run (no {RUN_FILE}): give the --output folder of "
                         "`python -m spacy_bioner annotate`") from None
    except (OSError, ValueError) as e:
        raise TasksError(f"{run_dir / RUN_FILE} cannot be read: {e}") from None
    if not isinstance(run, dict) or not isinstance(run.get("model"), dict) or "format" not in run:
        raise TasksError(f"{run_dir / RUN_FILE} is no run of spacy_bioner annotate")
    return run


def _pipeline_labels(model: str, spans_key: Optional[str]) -> List[str]:
    """The entity labels of the run's pipeline, where it is a folder: those its meta.json lists for its
    bio_ner heads (the one of `spans_key`, if given) and spaCy `ner` components; none otherwise."""
    path = Path(model)
    try:
        labels = json.loads((path / "meta.json").read_text(encoding="utf8")).get("labels", {})
        components = util.load_config(path / "config.cfg", interpolate=False).get("components", {})
    except (OSError, ValueError, AttributeError, configparser.Error):
        return []
    names = [name for name, component in components.items() if isinstance(component, dict) and (
        component.get("factory") == "ner" and spans_key is None
        or component.get("factory") == "bio_ner" and spans_key in (None, component.get("spans_key")))]
    lists = [labels.get(name) for name in names] if isinstance(labels, dict) else []
    return [label for names in lists if isinstance(names, list) for label in names if isinstance(label, str)]


def _complete(run_dir: Path) -> bool:
    """Whether the run in `run_dir` ended complete (its summary says so)."""
    try:
        return json.loads((run_dir / SUMMARY_FILE).read_text(encoding="utf8")).get("status") == "complete"
    except (OSError, ValueError, AttributeError):
        return False


def _documents(run_dir: Path, fmt: str, spans_key: Optional[str],
               exported: ExportedTasks) -> Iterator[Tuple[Dict[str, Any], List[Dict[str, Any]]]]:
    """Each annotated document's row and its entity rows (in text order), shard by shard; rejected
    records counted in `exported`."""
    for shard in shard_names(run_dir):
        entities: Dict[Tuple[str, str], List[Dict[str, Any]]] = {}
        for row in read_table(run_dir, "entities", fmt, [shard]):
            if row["in_ents"] if spans_key is None else row["spans_key"] == spans_key:
                entities.setdefault((row["source"], row["record"]), []).append(row)
        for document in read_table(run_dir, "documents", fmt, [shard]):
            if document["status"] != "annotated":
                exported.rejected += 1
                continue
            rows = entities.get((document["source"], document["record"]), [])
            yield document, sorted(rows, key=lambda row: (row["start_char"], row["end_char"]))


def _scored(entity: Dict[str, Any]) -> Dict[str, float]:
    """The entity's score as a task field, where it has one."""
    return {"score": entity["score"]} if entity["score"] is not None else {}


def _prodigy_task(document: Dict[str, Any], entities: List[Dict[str, Any]]) -> Dict[str, Any]:
    """A Prodigy task: the text and its spans (ner.manual shows them highlighted)."""
    return {"text": document["text"],
            "spans": [{"start": e["start_char"], "end": e["end_char"], "label": e["label"], **_scored(e)}
                      for e in entities],
            "meta": {"doc_id": document["doc_id"]}, "id": document["doc_id"]}


def _doccano_task(document: Dict[str, Any], entities: List[Dict[str, Any]]) -> Dict[str, Any]:
    """A task of doccano's sequence-labelling import."""
    return {"text": document["text"], "label": [[e["start_char"], e["end_char"], e["label"]] for e in entities],
            "id": document["doc_id"]}


def _label_studio_task(document: Dict[str, Any], entities: List[Dict[str, Any]], *, model_version: str,
                       from_name: str, to_name: str) -> Dict[str, Any]:
    """A Label Studio task with the entities as one prediction, scored by its least sure entity."""
    regions = [{
        "id": f"e{number}", "from_name": from_name, "to_name": to_name, "type": "labels",
        "value": {"start": e["start_char"], "end": e["end_char"], "text": e["text"], "labels": [e["label"]]},
        **_scored(e),
    } for number, e in enumerate(entities, start=1)]
    scores = [e["score"] for e in entities if e["score"] is not None]
    prediction = {"model_version": model_version, "result": regions, **({"score": min(scores)} if scores else {})}
    return {"data": {"text": document["text"], EXPORTED_ID_KEY: document["doc_id"]}, "predictions": [prediction]}


# The JSON Lines tools' tasks.
_TASKS = {"prodigy": _prodigy_task, "doccano": _doccano_task}
