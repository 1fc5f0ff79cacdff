"""The output directory of an annotation run: sharded tables, a manifest per shard, a summary.

Layout under `--output DIR`::

    run.json                 what produced the tables (model, inputs, options)
    entities/<shard>.parquet doc_id, source, record, start_char, end_char, text, label,
                             spans_key, score, in_ents (one row per head's span;
                             in_ents: the span is one of doc.ents; then one
                             per entity of doc.ents that no head found, an
                             entity ruler's, every one of a pipeline without
                             heads: spans_key and score null)
    documents/<shard>.parquet one row per input record: doc_id, source, record, text,
                             n_chars, n_words, n_entities, status ("annotated"/"rejected")
    rejects/<shard>.parquet  source, record, doc_id, kind, reason
    shards/<shard>.json      the shard's counts; written last, it marks the shard done
    summary.json             the run: counts that add up, rejects, deletions, speed,
                             library versions; written as an invocation ends (complete,
                             stopped, or failed past --max-rejects), removed as one
                             starts, so that none describes an earlier state

(`.jsonl` instead of `.parquet` with `--format jsonl`. Only Parquet needs
pyarrow: with `--format jsonl` it is never imported, for writing or for
reading back the tables of a resumed run.)

A shard is a fixed slice of one input: items `k * shard_size` to
`(k + 1) * shard_size - 1` of that input, named `<input name>-<hash of its
path>-<k>`. Names depend only on the inputs and the shard size, so a rerun
computes the same shards. Every file is written to a temporary name and
renamed (`os.replace`, atomic on POSIX), and the shard's manifest is renamed
last: a run killed at any point leaves complete shards, which a rerun skips,
and incomplete ones, which it writes again (over any partial table).
"""

import hashlib
import itertools
import json
import re
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

from ..about import library_versions
from ..annotation import spans_with_scores
from ..files import atomic_write
from ..messages import listed
from .sources import NOT_BAD_INPUT, SKIPPED, Deleted, Item, Reject, read_items

TABLES = ("entities", "documents", "rejects")
# The tables' columns, the document text their offsets index, and the manifests' counts,
# recorded in run.json: an output written with other ones (before `in_ents`, version 2;
# before PubMed sections kept their labels, version 3) is another run, not one to finish.
TABLES_VERSION = 3
FORMATS = ("parquet", "jsonl")
RUN_FILE = "run.json"
SUMMARY_FILE = "summary.json"
SHARDS_DIR = "shards"
SUMMARY_REJECTS = 1000  # rejects listed in summary.json; the rejects table has them all
# How records are grouped for the encoder: other batches give the same entities,
# their scores different in the sixth decimal (the arithmetic over another
# batch). `--resume` may change them (smaller batches after running out of
# memory); each shard's manifest records those it was made with.
BATCHING = ("batch_size", "max_batch_chars")
# What `--resume` may change: the batches, and the limit of bad input (to go on past it).
RESUMABLE = BATCHING + ("max_rejects",)


class OutputError(Exception):
    """The output directory cannot be used for this run (the message says why)."""


@dataclass
class Result:
    """One input item after the engine: its shard, position and, for a Record, its `entity_rows`."""

    shard: str
    position: int
    item: Item
    entities: List[Dict[str, Any]] = field(default_factory=list)
    n_words: int = 0


def shard_prefix(path: Path) -> str:
    """`<file name>-<8 hex of the path>`, of the resolved path: stable across reruns however the input
    is spelt (".", a symlink), distinct per input. The name is cut to `MAX_NAME` characters, so that
    a shard's file name fits a file system's 255 bytes (the digest keeps it distinct), and never
    starts with "_" or "." ("étude.jsonl", ".export.jsonl"): pyarrow and pandas reading a table's
    folder skip such files as hidden, and every row of the input with them."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", path.resolve().name)[:MAX_NAME].lstrip("._-") or "input"
    return f"{name}-{input_digest(path)}"


MAX_NAME = 160
# The files `annotate` writes in its folders: a shard's table or manifest, or the temporary of one
# (`files.atomic_write`). `--overwrite` deletes these alone.
_OWN_FILE = re.compile(r"[A-Za-z0-9._-]+-[0-9a-f]{8}-\d{6,}\.(?:parquet|jsonl|json)|\..+\.tmp-\d+")
# What every run.json of `annotate` holds, which tells it from another tool's file of that name.
_RUN_KEYS = ("inputs", "format", "shard_size")


def input_digest(path: Path) -> str:
    """8 hex of an input's resolved path: what tells its shards from another input's (`shard_prefix`)."""
    return hashlib.sha1(str(path.resolve()).encode("utf8")).hexdigest()[:8]


def _digest_and_number(shard: str) -> Tuple[str, str]:
    """The input digest and the number in a shard's name (the file name before them may vary: see below)."""
    digest, number = shard.rsplit("-", 2)[1:]
    return digest, number


def shard_name(prefix: str, position: int, shard_size: int) -> str:
    """The shard of the item at `position` (0-based) of an input."""
    return f"{prefix}-{position // shard_size:06d}"


def current_shard_names(finished: Iterable[str], inputs: Sequence[Path]) -> Set[str]:
    """The `finished` shards by the names `shard_prefix` gives them now. Before 5a4dd2d a
    shard took the file name of its input as typed (a symlink's, "input" for "."); the
    digest of the resolved path and the number after it tell the shard either way."""
    prefixes = {input_digest(path): shard_prefix(path) for path in inputs}
    names = set()
    for shard in finished:
        digest, number = _digest_and_number(shard)
        names.add(f"{prefixes[digest]}-{number}" if digest in prefixes else shard)
    return names


def sharded(
    items: Iterable[Any], prefix: str, shard_size: int, skip: Iterable[str] = ()
) -> Iterator[Tuple[str, int, Item]]:
    """(shard name, position, item) for the items of one input, those of the `skip` shards left out."""
    skip = frozenset(skip)
    for position, item in enumerate(items):
        shard = shard_name(prefix, position, shard_size)
        if shard not in skip:
            if item is SKIPPED:
                raise RuntimeError(f"{shard}: item {position} was skipped, but the shard is not finished")
            yield shard, position, item


def input_shards(
    path: Path, prefix: str, shard_size: int, skip: Iterable[str] = (),
    id_key: str = "id", text_key: str = "text", max_chars: int = 0, limit_name: str = "", max_items: int = 0,
) -> Iterator[Tuple[str, int, Item]]:
    """`sharded` over the items of the input `path` (`read_items`, `max_chars` named
    `limit_name` in a too_long reason), the first `max_items` only (if > 0), the
    records of the `skip` shards (finished before a resume) not even parsed."""
    skip = frozenset(skip)
    items: Iterator[Any] = read_items(path, id_key, text_key, max_chars,
                                      skip=lambda position: shard_name(prefix, position, shard_size) in skip,
                                      limit_name=limit_name)
    if max_items > 0:
        items = _first(items, max_items)
    return sharded(items, prefix, shard_size, skip)


def _first(items: Iterator[Any], n: int) -> Iterator[Any]:
    """The first `n` of `items`, a generator closed after them: an input is read no further."""
    with closing(items):
        yield from itertools.islice(items, n)


def bad_input_rejects(manifest: Dict[str, Any]) -> int:
    """The rejects of a shard that count against --max-rejects: all but those of the `NOT_BAD_INPUT` kinds."""
    return manifest["rejected"] - sum(manifest["rejects_by_kind"].get(kind, 0) for kind in NOT_BAD_INPUT)


def _input_changes(old: Dict[str, Any], new: Dict[str, Any]) -> str:
    """How one input (the same path) changed since the run recorded `old` (`run.input_state`)."""
    what = f"input {new['path']} changed since that run"
    if "files" in new:
        if "files" not in old:  # recorded otherwise (by an earlier version): nothing to compare
            return what
        if old["files"] != new["files"]:
            return f"{what}: {old['files']} .txt files then, {new['files']} now"
        if old.get("size") != new["size"]:
            return f"{what}: its .txt files hold {old.get('size')} bytes then, {new['size']} now"
        if old.get("mtime_ns") != new["mtime_ns"]:
            return f"{what}: a .txt file in it was modified"
        return f"{what}: a .txt file in it was renamed or replaced"
    if old.get("size") != new["size"]:
        return f"{what}: {old.get('size')} bytes then, {new['size']} now"
    return f"{what}: modified (its time changed, not its size)"


def _changed_keys(old: Dict[str, Any], new: Dict[str, Any]) -> List[str]:
    """The keys whose values differ, those of `new` first, in its order."""
    return [key for key in list(new) + [key for key in old if key not in new] if old.get(key) != new.get(key)]


def run_differences(previous: Dict[str, Any], run: Dict[str, Any]) -> List[str]:
    """What differs between the run recorded in `run.json` (`previous`) and `run`, one phrase each."""
    differences = []
    for key in _changed_keys(previous, run):
        old, new = previous.get(key), run.get(key)
        if key == "inputs" and isinstance(old, list) and isinstance(new, list):
            before = {entry.get("path"): entry for entry in old if isinstance(entry, dict)}
            paths = [entry["path"] for entry in new]
            added = [path for path in paths if path not in before]
            left_out = [path for path in before if path not in paths]
            if added:
                differences.append(f"inputs that run did not read: {listed(added)}")
            if left_out:
                differences.append(f"inputs of that run not given: {listed(left_out)}")
            if not added and not left_out and list(before) != paths:
                differences.append("the same inputs in another order")
            changed = [_input_changes(before[entry["path"]], entry)
                       for entry in new if entry["path"] in before and before[entry["path"]] != entry]
            differences.extend(changed)
            if not (added or left_out or changed or list(before) != paths):
                differences.append("other inputs")  # a run.json not written as this version does
        elif key == "limit":  # recorded only where given
            differences.append(f"another --limit ({old or 'none'} there, {new or 'none'} here)")
        elif isinstance(old, dict) and isinstance(new, dict):  # the model
            fields = (f"{field} {_then_now(old.get(field), new.get(field))}" for field in _changed_keys(old, new))
            differences.append(f"another {key} ({'; '.join(fields)})")
        else:
            differences.append(f"another {key} ({_then_now(old, new)})")
    return differences


def _then_now(old: Any, new: Any) -> str:
    """`old` there, `new` here: short values as JSON, others only said to differ."""
    if old is None:
        return "not recorded there"
    there, here = json.dumps(old, ensure_ascii=False), json.dumps(new, ensure_ascii=False)
    return f"{there} there, {here} here" if len(there) + len(here) <= 240 else "differs"


def entity_rows(doc: Any, heads: Sequence[str]) -> List[Dict[str, Any]]:
    """The entities of an annotated Doc: one row per span of each head, in head then text order,
    then one row per entity of `doc.ents` that no head found, in text order.

    `score` is the head's score of the span (None when a head writes no
    scores); `in_ents`, whether the span is one of `doc.ents` (the heads'
    spans without overlaps, as later components leave them), so that the
    table gives either view: where two heads found the same span with the
    same label, only the row of the higher score (the first head's on a tie)
    is marked, so that the marked rows are `doc.ents` once each. Offsets
    index `doc.text` in code points (Python `str` indices). The record's
    keys (`doc_id`, `source`, `record`) are added when its shard's tables
    are made.

    An entity of doc.ents that no head found (same tokens and label: one of
    an entity ruler beside the heads, or of spaCy's `ner` in a pipeline
    without heads) has a row of its own, with no spans_key and no score.
    """
    ents = {(ent.start, ent.end, ent.label) for ent in doc.ents}
    rows = []
    marked: Dict[Tuple[int, int, int], Dict[str, Any]] = {}
    for key in heads:
        for span, score in spans_with_scores(doc, key):
            row = _row(span, key, score, in_ents=False)
            rows.append(row)
            entity = (span.start, span.end, span.label)
            if entity in ents and (entity not in marked or _outscores(row, marked[entity])):
                marked[entity] = row
    for row in marked.values():
        row["in_ents"] = True
    rows.extend(_row(ent, None, None, in_ents=True)
                for ent in doc.ents if (ent.start, ent.end, ent.label) not in marked)
    return rows


def _row(span: Any, spans_key: Optional[str], score: Optional[float], in_ents: bool) -> Dict[str, Any]:
    """A span's row of the entity table."""
    return {
        "start_char": span.start_char,
        "end_char": span.end_char,
        "text": span.text,
        "label": span.label_,
        "spans_key": spans_key,
        "score": None if score is None else float(score),
        "in_ents": in_ents,
    }


def _outscores(row: Dict[str, Any], other: Dict[str, Any]) -> bool:
    """Whether `row`'s score is higher than `other`'s (a missing score is the lowest)."""
    def value(r: Dict[str, Any]) -> float:
        return float("-inf") if r["score"] is None else r["score"]

    return value(row) > value(other)


def _schemas() -> Dict[str, Any]:
    """The Arrow schema of each table (Parquet output only: this imports pyarrow)."""
    try:
        import pyarrow as pa
    except ImportError:
        raise OutputError(
            "--format parquet needs pyarrow (pip install pyarrow); use --format jsonl without it"
        ) from None

    return {
        "entities": pa.schema([
            ("doc_id", pa.string()), ("source", pa.string()), ("record", pa.string()),
            ("start_char", pa.int64()), ("end_char", pa.int64()),
            ("text", pa.string()), ("label", pa.string()), ("spans_key", pa.string()),
            ("score", pa.float64()), ("in_ents", pa.bool_()),
        ]),
        "documents": pa.schema([
            ("doc_id", pa.string()), ("source", pa.string()), ("record", pa.string()),
            ("text", pa.string()), ("n_chars", pa.int64()), ("n_words", pa.int64()),
            ("n_entities", pa.int64()), ("status", pa.string()),
        ]),
        "rejects": pa.schema([
            ("source", pa.string()), ("record", pa.string()), ("doc_id", pa.string()),
            ("kind", pa.string()), ("reason", pa.string()),
        ]),
    }


def _write_json(path: Path, obj: Any) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf8"))


def _write_table(path: Path, rows: List[Dict[str, Any]], schema: Any, fmt: str) -> None:
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(rows, schema=schema)
        atomic_write(path, lambda tmp: pq.write_table(table, str(tmp)))
    else:
        def write(tmp: Path) -> None:
            with open(tmp, "w", encoding="utf8") as f:
                for row in rows:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")

        atomic_write(path, write)


def shard_tables(results: Sequence[Result]) -> Tuple[Dict[str, List[Dict[str, Any]]], Dict[str, Any]]:
    """The three tables of a shard and its manifest (counts), from its results in any order."""
    tables: Dict[str, List[Dict[str, Any]]] = {name: [] for name in TABLES}
    labels: Counter = Counter()
    kinds: Counter = Counter()
    deleted: List[str] = []
    words = chars = 0
    for result in sorted(results, key=lambda r: r.position):
        item = result.item
        if isinstance(item, Deleted):
            deleted.append(item.pmid)
        elif isinstance(item, Reject):
            tables["rejects"].append({"source": item.source, "record": item.record, "doc_id": item.doc_id,
                                      "kind": item.kind, "reason": item.reason})
            tables["documents"].append({"doc_id": item.doc_id, "source": item.source, "record": item.record,
                                        "text": None, "n_chars": 0, "n_words": 0, "n_entities": 0,
                                        "status": "rejected"})
            kinds[item.kind] += 1
        else:
            keys = {"doc_id": item.doc_id, "source": item.source, "record": item.record}
            tables["entities"].extend({**keys, **row} for row in result.entities)
            tables["documents"].append({"doc_id": item.doc_id, "source": item.source, "record": item.record,
                                        "text": item.text, "n_chars": len(item.text), "n_words": result.n_words,
                                        "n_entities": len(result.entities), "status": "annotated"})
            # "head/label", or the label alone for an entity of doc.ents that no head found.
            labels.update("/".join(filter(None, (row["spans_key"], row["label"]))) for row in result.entities)
            words += result.n_words
            chars += len(item.text)
    manifest = {
        "documents": sum(1 for row in tables["documents"] if row["status"] == "annotated"),
        "rejected": len(tables["rejects"]),
        "rejects_by_kind": dict(sorted(kinds.items())),
        "deleted": deleted,
        "entities": len(tables["entities"]),
        "entities_in_ents": sum(row["in_ents"] for row in tables["entities"]),
        "entities_per_label": dict(sorted(labels.items())),
        "words": words,
        "chars": chars,
    }
    return tables, manifest


def previous_run(path: Path, resume: bool = False, overwrite: bool = False) -> Optional[Dict[str, Any]]:
    """The run recorded in `path` (its `run.json`; {} when that cannot be read
    and `overwrite` replaces it), or None where there is none.

    Raises OutputError where `path` cannot hold this run whatever the model:
    a file, a `run.json` that cannot be read (without `overwrite`), no run to
    `resume`, or a folder with other things in it and no run. `annotate`
    calls it before the pipeline is loaded, so that such a folder is refused
    at once; `OutputDir` checks the rest.
    """
    run_file = path / RUN_FILE
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path} is a file, not a directory")
    previous: Optional[Dict[str, Any]] = None
    if run_file.exists():
        try:
            previous = json.loads(run_file.read_text(encoding="utf8"))
            if not isinstance(previous, dict):
                raise ValueError(f"a JSON {type(previous).__name__}, not an object")
            if not all(key in previous for key in _RUN_KEYS):
                # Another tool's run.json: --overwrite deletes nothing of what it describes.
                missing = ", ".join(key for key in _RUN_KEYS if key not in previous)
                raise OutputError(f"{run_file} is no run of spacy_bioner annotate (it has no {missing}); "
                                  "choose a new directory")
        except ValueError as e:  # JSONDecodeError, UnicodeDecodeError: cut short or not ours
            if not overwrite:
                raise OutputError(
                    f"{run_file} cannot be read ({e}), so what the run there was is unknown; "
                    "use --overwrite to replace that run or choose a new directory"
                ) from None
            previous = {}  # a run all the same, which --overwrite replaces
    if previous is None:
        if resume:
            raise OutputError(f"--resume: {path} holds no run to resume (no {RUN_FILE})")
        if path.exists() and any(path.iterdir()):
            raise OutputError(f"{path} is not empty and holds no annotation run; choose a new directory")
    return previous


def refuse_another_run(path: Path, previous: Dict[str, Any], run: Dict[str, Any], resume: bool = False) -> None:
    """Raise OutputError, saying what differs, unless the run recorded in `path` (`previous`) is
    `run`, or differs only in what `--resume` may change (`RESUMABLE`) and the run is resumed. `annotate`
    checks what it knows of a run before the pipeline is loaded, with those entries of `previous` alone."""
    if previous == run:
        return
    resumable = all(key in RESUMABLE for key in _changed_keys(previous, run))
    if not (resume and resumable):
        also = ", --resume to go on with these settings" if resumable else ""
        raise OutputError(f"{path} holds another run: {'; '.join(run_differences(previous, run))}; "
                          f"use --overwrite to replace it{also} or choose a new directory")


class OutputDir:
    """The tables and manifests of one run under `path` (see the module docstring).

    `run` describes what produces the tables. An existing directory is used
    only for the same run: with `resume` it must hold one; without, it may be
    new or empty, or hold the same run (a rerun: finished shards are
    skipped). `overwrite` deletes a previous run's tables and manifests, their
    folders, and its files first, only where there is one (a `run.json` of
    annotate's) and nothing else is in those folders (`_remove_previous`).
    """

    def __init__(self, path: Path, fmt: str, run: Dict[str, Any], resume: bool = False, overwrite: bool = False):
        if fmt not in FORMATS:
            raise OutputError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
        self.path = path
        self.fmt = fmt
        self.run = run
        self.batching = {key: run[key] for key in BATCHING if key in run}  # recorded in each shard's manifest
        # Only Parquet needs pyarrow; built before anything is written, so that a
        # missing pyarrow stops the run here rather than at the first shard.
        self.schemas: Dict[str, Any] = _schemas() if fmt == "parquet" else {}
        run_file = path / RUN_FILE
        previous = previous_run(path, resume, overwrite)
        if previous is not None:
            if overwrite:
                # Only a directory that holds a run: anything else in it is not ours to delete.
                self._remove_previous()
                previous = None
            else:
                refuse_another_run(path, previous, run, resume)
        try:
            # run.json first: a folder left with the subfolders alone would be refused as not a run.
            path.mkdir(parents=True, exist_ok=True)
            if previous != run:
                _write_json(run_file, run)
            (path / SUMMARY_FILE).unlink(missing_ok=True)
            for sub in TABLES + (SHARDS_DIR,):
                (path / sub).mkdir(exist_ok=True)
        except OSError as e:  # a file where a folder should be, no permission, a read-only file system
            raise OutputError(f"{path} cannot be used as the output folder: {e.strerror or e}: {e.filename}") from None

    def _remove_previous(self) -> None:
        """Delete what a previous run wrote: its tables, manifests and their temporaries, then the
        folders where nothing else is; refused, before anything is deleted, where they hold other files."""
        entries = [self.path / sub for sub in TABLES + (SHARDS_DIR,)]
        # A link (to a folder elsewhere, or to none), or a file where a folder should be: not annotate's.
        foreign = [entry for entry in entries if entry.is_symlink() or (entry.exists() and not entry.is_dir())]
        folders = [entry for entry in entries if entry.is_dir() and not entry.is_symlink()]
        foreign += [entry for folder in folders for entry in sorted(folder.iterdir())
                    if entry.is_symlink() or not entry.is_file() or not _OWN_FILE.fullmatch(entry.name)]
        if foreign:
            raise OutputError(f"--overwrite deletes only what annotate wrote, and {self.path} holds other files "
                              f"in its folders, or links: {listed([str(entry) for entry in foreign])}; move them, "
                              "or choose a new directory")
        try:
            for folder in folders:
                for entry in folder.iterdir():
                    entry.unlink()
                folder.rmdir()
        except OSError as e:
            raise OutputError(f"--overwrite: {e.filename} cannot be deleted ({e.strerror or e}); the run there is "
                              "partly deleted: delete the rest, or choose a new directory") from None
        for name in (RUN_FILE, SUMMARY_FILE):
            if (self.path / name).exists():
                (self.path / name).unlink()

    def table_path(self, table: str, shard: str) -> Path:
        """Where one shard of one table is written."""
        return self.path / table / f"{shard}.{self.fmt}"

    def manifest_path(self, shard: str) -> Path:
        """Where a finished shard's manifest is written (last, after its tables)."""
        return self.path / SHARDS_DIR / f"{shard}.json"

    def finished(self) -> Set[str]:
        """The shards whose manifest and three tables are all there."""
        done = set()
        for manifest in (self.path / SHARDS_DIR).glob("*.json"):
            shard = manifest.stem
            if all(self.table_path(table, shard).exists() for table in TABLES):
                done.add(shard)
        return done

    def manifests(self) -> Dict[str, Dict[str, Any]]:
        """shard -> manifest of every finished shard."""
        return {
            shard: json.loads(self.manifest_path(shard).read_text(encoding="utf8"))
            for shard in sorted(self.finished())
        }

    def write_shard(self, shard: str, source: str, results: Sequence[Result]) -> Dict[str, Any]:
        """Write the shard's tables, then its manifest; return the manifest."""
        tables, manifest = shard_tables(results)
        manifest = {"shard": shard, "source": source, **manifest, "batching": self.batching}
        for table in TABLES:
            _write_table(self.table_path(table, shard), tables[table], self.schemas.get(table), self.fmt)
        _write_json(self.manifest_path(shard), manifest)
        return manifest

    def write_summary(self, inputs: Sequence[Path], status: str, stats: Dict[str, Any]) -> Dict[str, Any]:
        """Aggregate the manifests of finished shards into summary.json; return it."""
        manifests = list(self.manifests().values())
        per_input = []
        for path in inputs:
            # By the digest of the resolved path in the shard's name: the input may be spelt otherwise
            # than by the invocation that wrote a manifest (`current_shard_names`). `path` is the
            # resolved path, as every row's `source` is, so that one can join them.
            digest = input_digest(path)
            own = [m for m in manifests if _digest_and_number(m["shard"])[0] == digest]
            documents = sum(m["documents"] for m in own)
            rejected = sum(m["rejected"] for m in own)
            per_input.append({"path": str(path.resolve()), "shards": len(own), "records": documents + rejected,
                              "documents": documents, "rejected": rejected,
                              "deleted": [pmid for m in own for pmid in m["deleted"]]})
        labels: Counter = Counter()
        kinds: Counter = Counter()
        for m in manifests:
            labels.update(m["entities_per_label"])
            kinds.update(m["rejects_by_kind"])
        rejects = self.read_table("rejects", limit=SUMMARY_REJECTS)
        documents = sum(m["documents"] for m in manifests)
        rejected = sum(m["rejected"] for m in manifests)
        bad_input = sum(bad_input_rejects(m) for m in manifests)
        summary = {
            "status": status,
            "output": str(self.path),
            "format": self.fmt,
            "run": self.run,
            "versions": library_versions(),
            "inputs": per_input,
            "shards": len(manifests),
            "records": documents + rejected,
            "documents": documents,
            "rejected": rejected,
            # What --max-rejects counts, and the rest (`NOT_BAD_INPUT`: no text to annotate, or too long).
            "rejected_bad_input": bad_input,
            "rejected_not_bad_input": rejected - bad_input,
            "rejects_by_kind": dict(sorted(kinds.items())),
            "rejects": rejects,
            "rejects_listed": f"first {len(rejects)} of {rejected}; all in rejects/",
            "deleted": sum(len(m["deleted"]) for m in manifests),  # the PMIDs: under each input
            "entities": sum(m["entities"] for m in manifests),
            "entities_in_ents": sum(m["entities_in_ents"] for m in manifests),
            "entities_per_label": dict(sorted(labels.items())),
            "words": sum(m["words"] for m in manifests),
            "chars": sum(m["chars"] for m in manifests),
            **stats,
        }
        _write_json(self.path / SUMMARY_FILE, summary)
        return summary

    def read_table(self, table: str, limit: Optional[int] = None) -> List[Dict[str, Any]]:
        """The rows of a table over all finished shards, in shard order."""
        return read_table(self.path, table, self.fmt, sorted(self.finished()), limit)


def shard_names(path: Path) -> List[str]:
    """The shards under an output directory that have a manifest, in name order."""
    return sorted(p.stem for p in (path / SHARDS_DIR).glob("*.json"))


def read_table(
    path: Path, table: str, fmt: str = "parquet", shards: Optional[Sequence[str]] = None, limit: Optional[int] = None
) -> List[Dict[str, Any]]:
    """The rows of `table` under an output directory, shard by shard in name order.

    Only `fmt="parquet"` imports pyarrow.
    """
    if shards is None:
        shards = shard_names(path)
    rows: List[Dict[str, Any]] = []
    for shard in shards:
        file = path / table / f"{shard}.{fmt}"
        if fmt == "parquet":
            import pyarrow.parquet as pq

            rows.extend(pq.read_table(str(file)).to_pylist())
        else:
            with open(file, encoding="utf8") as f:
                rows.extend(json.loads(line) for line in f if line.strip())
        if limit is not None and len(rows) >= limit:
            return rows[:limit]
    return rows


def first_entity_rows(path: Path, fmt: str, n: int) -> List[Dict[str, Any]]:
    """The first `n` rows of the entity table in text order: document by document, each
    document's rows by offset, every head's together (the table holds a document's rows head
    by head)."""
    rows: List[Dict[str, Any]] = []
    for shard in shard_names(path):
        if len(rows) >= n:
            break
        rows.extend(read_table(path, "entities", fmt, [shard]))
    documents: Dict[Tuple[str, str], int] = {}
    for row in rows:
        documents.setdefault((row["source"], row["record"]), len(documents))
    rows.sort(key=lambda row: (documents[(row["source"], row["record"])], row["start_char"], row["end_char"]))
    return rows[:n]
