"""brat standoff corpora (a folder of `.txt` texts and `.ann` annotations) to spaCy Docs.

brat, INCEpTION and most biomedical shared tasks (BioNLP, CRAFT, n2c2) write
one text per `NAME.txt`, its annotations beside it in `NAME.ann` (or, as the
BioNLP shared tasks do, `NAME.a1` and `NAME.a2`, read together). Each text
with its annotations is one Doc, in the order of the paths, its path under the folder
without suffix as `doc.user_data["pmid"]`, as the other readers keep a
document's id. Only annotation files are read: a `.txt` without one
(a README, a text never annotated) is left out and warned of.

Offsets count the characters (code points) of the `.txt` as brat reads it:
UTF-8, line ends as they are (a CRLF is two); INCEpTION's count UTF-16 units
(`offset_units="utf-16"`), which differ after a character outside the Basic
Multilingual Plane (`offset_units="auto"`: each mention read in the units its
text fits). Of the `.ann` lines:

- `T` (a text-bound annotation, `T1<TAB>Disease 0 5;10 15<TAB>text`) is an
  entity, checked against the text; a mismatch is an error (the text was
  edited or re-encoded after the annotation). A mention of several
  fragments is one span, or dropped or covered where words lie between
  them, as `offsets.AnnotationSelection` says.
- An event's trigger (the `T` an `E` line names first) is no entity: it is
  left out and counted ("excluded"), unless `entity_types` names its type.
  With `entity_types`, mentions of the other types are left out and counted
  the same way.
- `N` (a normalization, `N1<TAB>Reference T1 MESH:D003920<TAB>name`) gives
  its mention's `kb_id_` (several are joined by "|", as PubTator's composite
  ids are).
- `A`/`M` (attributes) are counted ("excluded") and left out, but where
  `label_attribute` names them: their value is their mention's label (the
  rest of the line: INCEpTION writes a value with spaces as it is).
- `R`, `E` and `*` (relations, events, equivalences) are counted
  ("relation") and ignored; `#` (notes) are ignored.

The mentions are then placed on the BioTokenizer's tokens as
`offsets.place_mentions` says (expanded to token boundaries, the longer of
overlapping ones kept, each change reported); sentences by the tokenizer's
rules, never inside an entity.

Written here: spaCy's `spacy convert` reads no brat, and the brat reader of
`bioc` (PyPI, 2.1) reads the text with newline translation (every offset
after a CRLF shifts), leaves normalizations out, needs both `.a1` and `.a2`,
and stops at a bad line on an `assert` naming neither file nor line. The
format is a few line types; placing the mentions on the pipeline's tokens,
with a report, is the work.
"""

import os
import re
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from spacy.language import Language
from spacy.tokens import Doc

from ..messages import counted
from .iob import DEFAULT_SPANS_KEY
from .offsets import AnnotationSelection, Discontinuous, Mention, MentionUnits, annotated_doc
from .report import EXCLUDED, RELATION, SKIPPED, ConversionError, ConversionReport, Issue, read_all

ANNOTATION_SUFFIXES = (".ann", ".a1", ".a2")
# "T1<TAB>Disease 0 5;10 15": a type, then fragments "start end" joined by ";".
_TEXT_BOUND = re.compile(r"(\S+) ((?:\d+ \d+;)*\d+ \d+)")
_NORMALIZATION = re.compile(r"\S+ (T\S+) (\S+)")
# The first character of an annotation's id: what the line is.
_LINE_KINDS = {"T": "text-bound annotation", "N": "normalization", "A": "attribute", "M": "attribute",
               "R": "relation", "E": "event", "*": "equivalence", "#": "note"}


class _TextBound(NamedTuple):
    """A `T` line: its id, type, fragments and text, and where it is."""

    id: str
    label: str
    fragments: List[Tuple[int, int]]
    text: Optional[str]
    where: str


def read_brat(
    path: Path,
    nlp: Language,
    *,
    spans_key: str = DEFAULT_SPANS_KEY,
    entity_types: Optional[Sequence[str]] = None,
    discontinuous: Discontinuous = "drop",
    label_attribute: Optional[str] = None,
    offset_units: MentionUnits = "characters",
) -> Tuple[List[Doc], ConversionReport]:
    """Read a folder of brat standoff files (searched recursively, following links), or one `.ann`
    file and its `.txt`: one Doc per annotated text (see the module docstring for what is read, and
    how). `label_attribute` names the attribute whose value is a mention's label where it has one
    (INCEpTION's export of its Named Entity layer: "value"). `iter_brat` gives them one at a time."""
    return read_all(iter_brat, path, nlp, spans_key=spans_key, entity_types=entity_types,
                    discontinuous=discontinuous, label_attribute=label_attribute, offset_units=offset_units)


def iter_brat(
    path: Path,
    nlp: Language,
    *,
    report: ConversionReport,
    spans_key: str = DEFAULT_SPANS_KEY,
    entity_types: Optional[Sequence[str]] = None,
    discontinuous: Discontinuous = "drop",
    label_attribute: Optional[str] = None,
    offset_units: MentionUnits = "characters",
) -> Iterator[Doc]:
    """`read_brat`'s documents, each as its files are read, and what was changed in `report`."""
    selection = AnnotationSelection(entity_types, discontinuous, offset_units)
    path = Path(path)
    doc_index = 0
    for stem, annotation_files in _documents(path):
        text_path = _with_suffix(stem, ".txt")
        text = _read_text(text_path)
        doc_id = (stem.relative_to(path) if path.is_dir() else Path(stem.name)).as_posix()
        if not text.strip():
            if any(_lines(ann) for ann in annotation_files):
                raise ConversionError(f"{text_path}: an empty text with annotations in {annotation_files[0]}")
            report.issues.append(Issue(SKIPPED, str(text_path), "an empty text", doc_index=max(doc_index - 1, 0)))
            continue
        mentions = _mentions(annotation_files, text, selection, report, doc_index, label_attribute)
        yield annotated_doc(nlp, text, mentions, report, doc_index, spans_key, str(text_path), doc_id=doc_id)
        doc_index += 1
    if not doc_index:
        raise ConversionError(f"{path}: no annotated text (a NAME.txt with its NAME.ann, or .a1 and .a2) to convert")
    selection.warn_of_units(str(path))
    selection.warn_of_types_not_found(str(path))


def _documents(path: Path) -> List[Tuple[Path, List[Path]]]:
    """(the path without suffix, its annotation files) of each annotated text under `path`, in the
    order of the paths; a text without annotations is warned of, annotations without a text are an
    error."""
    if path.is_file():
        if path.suffix not in ANNOTATION_SUFFIXES + (".txt",):
            raise ConversionError(f"{path}: not a brat file (a folder of NAME.txt and NAME.ann, or one of them)")
        found = [path.with_suffix(suffix) for suffix in ANNOTATION_SUFFIXES if path.with_suffix(suffix).is_file()]
        texts = [path.with_suffix(".txt")]
    elif path.is_dir():
        files = _files_under(path)
        found = [p for p in files if p.suffix in ANNOTATION_SUFFIXES]
        texts = [p for p in files if p.suffix == ".txt"]
    else:
        raise ConversionError(f"{path}: no such file or folder")
    by_stem: Dict[Path, List[Path]] = defaultdict(list)
    for ann in sorted(found):
        by_stem[ann.with_suffix("")].append(ann)
    documents = []
    both = []  # stems with a NAME.ann and NAME.a1 or .a2
    for stem, anns in sorted(by_stem.items()):
        if not _with_suffix(stem, ".txt").is_file():
            raise ConversionError(f"{anns[0]}: no {_with_suffix(stem, '.txt').name} beside it, the text its offsets "
                                  "index")
        # NAME.ann holds all of a document's annotations where there is one; .a1 and .a2 split them.
        ann = [p for p in anns if p.suffix == ".ann"]
        if ann and len(anns) > 1:
            both.append(stem)
        documents.append((stem, ann or anns))
    if both:
        warnings.warn(f"{path}: {counted(len(both), 'text')} with a NAME.ann and a NAME.a1 or .a2 "
                      f"({both[0].name}): the .ann is read, the .a1 and .a2 are not")
    unannotated = [text for text in texts if text.with_suffix("") not in by_stem]
    if unannotated and path.is_dir():
        many = len(unannotated) > 1
        warnings.warn(f"{path}: {counted(len(unannotated), '.txt file')} without annotations left out "
                      f"({unannotated[0].relative_to(path)}{', ...' * many}): an empty NAME.ann marks a text "
                      "without entities")
    elif unannotated:
        raise ConversionError(f"{path}: no {path.with_suffix('.ann').name} (or .a1) beside it: an empty one marks "
                              "a text without entities")
    return documents


def _files_under(folder: Path) -> List[Path]:
    """The files under `folder`, through linked folders too (each folder once), in the order of their
    paths."""
    files = []
    visited = set()
    for root, folders, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in visited:  # a link back up the tree, or a second link to one folder
            folders[:] = []
            continue
        visited.add(real)
        files += [Path(root, name) for name in names if Path(root, name).is_file()]
    return sorted(files)


def _with_suffix(stem: Path, suffix: str) -> Path:
    """The file of `stem` (a path without its suffix, "PMC1.v2") with `suffix` ("PMC1.v2.txt")."""
    return stem.with_name(stem.name + suffix)


def _read_text(path: Path) -> str:
    """The text as brat reads it: UTF-8, line ends kept."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConversionError(f"{path}: not UTF-8 (byte {e.start}: {data[e.start:e.start + 4]!r}); brat's offsets "
                              "count the characters of the UTF-8 text") from None


def _lines(path: Path) -> List[Tuple[int, str]]:
    """The non-blank lines of an annotation file, by their number."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConversionError(f"{path}: not UTF-8 (byte {e.start})") from None
    return [(lineno, line.rstrip("\r")) for lineno, line in enumerate(text.split("\n"), start=1) if line.strip()]


def _mentions(
    annotation_files: Sequence[Path],
    text: str,
    selection: AnnotationSelection,
    report: ConversionReport,
    doc_index: int,
    label_attribute: Optional[str] = None,
) -> List[Mention]:
    """The entities of one document's annotation files as Mentions of `text`, as `selection` chooses
    them; what is left out goes into `report`."""
    text_bound: List[_TextBound] = []
    kb_ids: Dict[str, List[str]] = defaultdict(list)
    labels: Dict[str, str] = {}  # T id -> its label_attribute's value
    triggers: Dict[str, str] = {}  # T id -> the event whose trigger it is
    seen: Dict[str, str] = {}  # annotation id -> where it is
    for ann in annotation_files:
        for lineno, line in _lines(ann):
            where = f"{ann}:{lineno}"
            # brat's own parser splits off the id and the annotation: a T line's text may hold tabs.
            fields = line.split("\t", 2)
            ann_id, kind = fields[0], fields[0][:1]
            if kind not in _LINE_KINDS:
                raise ConversionError(f"{where}: not a brat annotation line (an id of T, N, R, E, A, M, *, # and a "
                                      f"tab first): {line[:60]!r}")
            if ann_id != "*":
                if ann_id in seen:
                    raise ConversionError(f"{where}: the id {ann_id} again, as at {seen[ann_id]}")
                seen[ann_id] = where
            body = fields[1].split(" ") if len(fields) > 1 else []
            if kind == "T":
                text_bound.append(_text_bound(fields, where))
            elif kind == "N":
                match = _NORMALIZATION.fullmatch(fields[1]) if len(fields) > 1 else None
                if match is None:
                    raise ConversionError(f"{where}: a normalization is 'N1<TAB>Reference T1 DB:ID', not {line[:60]!r}")
                kb_ids[match.group(1)].append(match.group(2))
            elif kind in "AM" and label_attribute is not None and body[:1] == [label_attribute] and len(body) >= 3:
                labels[body[1]] = " ".join(body[2:])  # INCEpTION writes a value as it is, spaces and all
            elif kind in "AM":
                report.issues.append(Issue(EXCLUDED, where, f"attribute {' '.join(body)!r} ignored",
                                           doc_index=doc_index))
            elif kind in "RE*":
                report.issues.append(Issue(RELATION, where, f"{_LINE_KINDS[kind]} ignored", doc_index=doc_index))
                if kind == "E" and ":" in (body or [""])[0]:
                    triggers.setdefault(body[0].split(":", 1)[1], ann_id)
    mentions = []
    for bound in text_bound:
        label = labels.get(bound.id, bound.label)
        if not selection.keeps_type(label, bound.where, report, doc_index):
            continue
        trigger_of = triggers.get(bound.id)
        if selection.wanted is None and trigger_of is not None:
            report.issues.append(Issue(EXCLUDED, bound.where, f"the trigger of event {trigger_of}", label, doc_index))
            continue
        mention = selection.mention(text, bound.fragments, label, bound.where, report, doc_index,
                                    given_text=bound.text, kb_id="|".join(kb_ids.get(bound.id, [])))
        if mention is not None:
            mentions.append(mention)
    return mentions


def _text_bound(fields: List[str], where: str) -> _TextBound:
    """A `T` line's mention."""
    match = _TEXT_BOUND.fullmatch(fields[1]) if len(fields) > 1 else None
    if match is None:
        raise ConversionError(f"{where}: a text-bound annotation is 'T1<TAB>Type START END<TAB>text', not "
                              f"{chr(9).join(fields)[:60]!r}")
    fragments = [(int(a), int(b)) for a, b in (pair.split(" ") for pair in match.group(2).split(";"))]
    return _TextBound(fields[0], match.group(1), fragments, fields[2] if len(fields) > 2 else None,
                      f"{where} {fields[0]}")
