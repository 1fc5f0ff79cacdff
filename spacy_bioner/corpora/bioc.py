"""BioC corpora (XML or JSON: BioCreative's corpora, PubTator3's exports) to spaCy Docs.

One Doc per BioC document, its `id` as `doc.user_data["pmid"]`, as the other
readers keep a document's id. Its text is its passages' (or, in a passage
made of sentences, its sentences') texts, each at its offset, with spaces
between: a PubMed title and abstract (offsets 0 and len(title) + 1) give
PubTator's "title + space + abstract". A sentence starts at each passage and
at each sentence BioC gives. Offsets are the document's, counted in
characters (code points) as Python counts them, or with
`offset_units="utf-16"` in UTF-16 units, as BioC's Java tools count; the two
differ after a character outside the Basic Multilingual Plane. An annotation
whose text is not the document's at its offsets is an error naming it (and
the units in which they would match).

The annotations of the document, its passages and its sentences are its
mentions: the label is the infon "type", the kb id the first of the infons
"identifier", "MESH" and "concept_id" (a MeSH id of "-1", none, is empty, as
in PubTator files). An annotation of several locations is one span, or
dropped or covered where words lie between them, as
`offsets.AnnotationSelection` says; one without a location (NLM-Chem's
"MeSH_Indexing_Chemical", of the whole document) is left out and counted
("excluded"), and one of zero length dropped. BC5CDR's composite mentions
("CompositeRole": "CompositeMention") are kept whole and reported, as
`read_pubtator` keeps them; their parts ("IndividualMention") are left out
and counted. Relations are counted and ignored. A document id given twice is
warned of (one document could land in train and dev); a document without
text is skipped and counted (an error where it has annotations), as brat's
empty texts and PubTator's empty titles and abstracts are.

XML is read a document at a time (lxml's iterparse, each document cleared
once read); JSON as a collection (`{"documents": [...]}`), PubTator3's
`{"PubTator3": [...]}`, a list of documents or collections, one document, or
JSON Lines of any of these (a line at a time; a file of one value is parsed
whole). Written here, not with `bioc` (PyPI, 2.1), whose
XML reader keeps every element it has read (ten times a file's size in
memory), reads a passage made of sentences as an empty text, fails with an
AttributeError where the root is no `<collection>` and with KeyErrors and
TypeErrors naming no document or line, and reads none of PubTator3's JSON
forms.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from lxml import etree
from spacy.language import Language
from spacy.tokens import Doc

from ..compressed import DECOMPRESSION_ERRORS, describe_error, open_bytes, unread
from ..messages import counted
from .iob import DEFAULT_SPANS_KEY
from .offsets import AnnotationSelection, CharacterOffsets, Discontinuous, Mention, OffsetUnits, annotated_doc
from .pubtator import mesh_ids
from .report import (
    DROPPED,
    EXCLUDED,
    ID_GIVEN_TWICE,
    RELATION,
    SKIPPED,
    ConversionError,
    ConversionReport,
    Issue,
    read_all,
    warn_of_repeats,
)
from .text import PathLike, json_id, json_objects, iter_json_values

# The infons of an annotation that hold its kb id, in the order they are looked for.
KB_ID_INFONS = ("identifier", "MESH", "concept_id")
COMPOSITE_ROLE = "CompositeRole"
_BOM = b"\xef\xbb\xbf"


@dataclass
class _Annotation:
    id: str
    infons: Dict[str, str]
    locations: List[Tuple[int, int]]  # (offset, length)
    text: Optional[str]


@dataclass
class _Document:
    """A BioC document as far as the conversion reads it."""

    id: str
    where: str  # the file, and the line where the format has lines
    texts: List[Tuple[int, str]] = field(default_factory=list)  # (offset, text) of the passages or sentences
    starts: List[int] = field(default_factory=list)  # offsets where a passage or sentence starts
    annotations: List[_Annotation] = field(default_factory=list)
    relations: int = 0

    def add_passage(self, offset: int, text: str, sentences: List[Tuple[int, str]]) -> None:
        """A passage at `offset`: its text, or where it has none, its sentences' (NegBio's sentence
        split keeps both); each of the passage and its sentences starts a sentence."""
        self.texts += [(offset, text)] if text or not sentences else sentences
        self.starts += [offset] + [sentence_offset for sentence_offset, _ in sentences]


def read_bioc(
    path: PathLike,
    nlp: Language,
    *,
    spans_key: str = DEFAULT_SPANS_KEY,
    entity_types: Optional[Sequence[str]] = None,
    discontinuous: Discontinuous = "drop",
    offset_units: OffsetUnits = "characters",
) -> Tuple[List[Doc], ConversionReport]:
    """Read a BioC XML or JSON file (plain, .gz or .xz; told by its first character): one Doc per
    document (see the module docstring); `iter_bioc` gives them one at a time."""
    return read_all(iter_bioc, path, nlp, spans_key=spans_key, entity_types=entity_types,
                    discontinuous=discontinuous, offset_units=offset_units)


def iter_bioc(
    path: PathLike,
    nlp: Language,
    *,
    report: ConversionReport,
    spans_key: str = DEFAULT_SPANS_KEY,
    entity_types: Optional[Sequence[str]] = None,
    discontinuous: Discontinuous = "drop",
    offset_units: OffsetUnits = "characters",
) -> Iterator[Doc]:
    """`read_bioc`'s documents, each as it is read (BioC XML is parsed as it comes), and what was
    changed in `report`."""
    selection = AnnotationSelection(entity_types, discontinuous, offset_units, auto=False)
    path = Path(path)
    n_docs = 0
    ids: Set[str] = set()
    repeated: List[str] = []  # where a document repeats an earlier one's id
    for document in _documents(path):
        where = f"{document.where} document {document.id}"
        if document.id in ids:
            repeated.append(where)
        ids.add(document.id)
        text, starts = _text(document, where, offset_units, selection)
        if not text.strip():
            if document.annotations:
                raise ConversionError(f"{where}: no text, but {counted(len(document.annotations), 'annotation')}")
            report.issues.append(Issue(SKIPPED, where, "no text", doc_index=max(n_docs - 1, 0)))
            continue
        mentions: List[Mention] = []
        for annotation, named in zip(document.annotations, _annotation_names(document.annotations)):
            mention = _mention(annotation, text, f"{where} {named}", selection, report, n_docs)
            if mention is not None:
                mentions.append(mention)
        report.issues += [Issue(RELATION, where, "relation ignored", doc_index=n_docs)] * document.relations
        yield annotated_doc(nlp, text, mentions, report, n_docs, spans_key, where, doc_id=document.id,
                            sentence_starts_at=starts)
        n_docs += 1
    if not n_docs:
        raise ConversionError(f"{path}: no BioC document" + (" with text" if report.of_kind(SKIPPED) else ""))
    warn_of_repeats(str(path), "document", repeated, "the id", ID_GIVEN_TWICE)
    selection.warn_of_types_not_found(str(path))


def _documents(path: Path) -> Iterator[_Document]:
    """The BioC documents of the file, one at a time."""
    try:
        with open_bytes(path) as f:
            head = b""  # up to the first byte that is no whitespace (a pipe may give a few bytes at a time)
            while len(head) < 4096 and not _first_byte(head):
                chunk = f.read1(4096 - len(head))
                if not chunk:
                    break
                head += chunk
            first = _first_byte(head)
            # The first bytes given back: a pipe is read once.
            with unread(head, f) as stream:
                if first in (b"{", b"["):
                    yield from _json_documents(path, stream)
                elif first == b"<":
                    yield from _xml_documents(stream, path)
                else:
                    raise ConversionError(f"{path}: neither BioC XML nor BioC JSON (it begins with {first!r})")
    except FileNotFoundError:
        raise ConversionError(f"{path}: no such file") from None
    except etree.XMLSyntaxError as e:
        raise ConversionError(f"{path}:{e.lineno}: not XML ({e.msg})") from None
    except (OSError, *DECOMPRESSION_ERRORS) as e:
        raise ConversionError(f"{path}: {describe_error(path, e)}") from None


def _first_byte(head: bytes) -> bytes:
    """The first byte of `head` that is no whitespace or byte order mark (b"" where there is none)."""
    return head.lstrip().removeprefix(_BOM).lstrip()[:1]


# --- XML ------------------------------------------------------------------------------------------


def _name(element: Any) -> str:
    """An element's name without its namespace."""
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def _xml_documents(f: IO[bytes], path: Path) -> Iterator[_Document]:
    """The documents of a BioC XML file, each cleared once read, so that memory holds one."""
    root = None
    for event, element in etree.iterparse(f, events=("start", "end")):
        if root is None:
            root = element
            if _name(root) != "collection":
                raise ConversionError(f"{path}:{root.sourceline}: the root element is <{_name(root)}>, not BioC's "
                                      "<collection>")
        elif event == "end" and _name(element) == "document" and element.getparent() is root:
            yield _xml_document(element, path)
            element.clear()
            while element.getprevious() is not None:  # the elements read before it
                del root[0]


def _xml_document(element: Any, path: Path) -> _Document:
    where = f"{path}:{element.sourceline}"
    children = [(_name(child), child) for child in element]
    doc_id = next(((child.text or "").strip() for name, child in children if name == "id"), "")
    if not doc_id:
        raise ConversionError(f"{where}: a document without an <id>")
    document = _Document(doc_id, where)
    for name, child in children:
        if name == "passage":
            _xml_passage(child, document, path)
        elif name == "annotation":
            document.annotations.append(_xml_annotation(child, path))
        elif name == "relation":
            document.relations += 1
    return document


def _xml_passage(element: Any, document: _Document, path: Path) -> None:
    """The passage's text (or its sentences'), annotations and relations, into `document`."""
    text, sentences = "", []
    for child in element:
        name = _name(child)
        if name == "text":
            text = child.text or ""
        elif name == "sentence":
            sentences.append((_xml_offset(child, path), next((s.text or "" for s in child if _name(s) == "text"), "")))
            document.annotations += [_xml_annotation(a, path) for a in child if _name(a) == "annotation"]
            document.relations += sum(1 for r in child if _name(r) == "relation")
        elif name == "annotation":
            document.annotations.append(_xml_annotation(child, path))
        elif name == "relation":
            document.relations += 1
    document.add_passage(_xml_offset(element, path), text, sentences)


def _xml_offset(element: Any, path: Path) -> int:
    """The <offset> of a passage or sentence."""
    offset = next((child.text for child in element if _name(child) == "offset"), None)
    return _integer(offset, f"{path}:{element.sourceline}: the <{_name(element)}>'s offset")


def _xml_annotation(element: Any, path: Path) -> _Annotation:
    where = f"{path}:{element.sourceline}"
    infons, locations, text = {}, [], None
    for child in element:
        name = _name(child)
        if name == "infon":
            infons[child.get("key", "")] = child.text or ""
        elif name == "location":
            locations.append((_integer(child.get("offset"), f"{where}: a location's offset"),
                              _integer(child.get("length"), f"{where}: a location's length")))
        elif name == "text":
            text = child.text or ""
    return _Annotation(element.get("id") or f"at line {element.sourceline}", infons, locations, text)


# --- JSON -----------------------------------------------------------------------------------------


def _json_documents(path: Path, stream: IO[bytes]) -> Iterator[_Document]:
    """The documents of a BioC JSON file (`stream`, its bytes), or of JSON Lines of documents or
    collections."""
    for value, where in iter_json_values(path, stream):
        for document in _json_document_objects(value, where):
            yield _json_document(document, where)


def _json_document_objects(value: Any, where: str) -> Iterator[Any]:
    """The document objects of a collection, PubTator3's answer, a list, or a document."""
    if isinstance(value, list):
        for item in value:
            yield from _json_document_objects(item, where)
    elif isinstance(value, dict) and ("documents" in value or "PubTator3" in value):
        yield from _json_document_objects(value.get("documents", value.get("PubTator3")), where)
    elif isinstance(value, dict) and "passages" in value:
        yield value
    else:
        raise ConversionError(f"{where}: {json.dumps(value)[:60]} is no BioC collection or document")


def _json_document(value: Dict[str, Any], where: str) -> _Document:
    doc_id = json_id(value.get("id"))
    if doc_id is None:
        raise ConversionError(f"{where}: a document without an id ({json.dumps(value.get('id'))})")
    document = _Document(doc_id, where)
    named = f"{where} document {document.id}"
    for passage in json_objects(value, "passages", named):
        sentences = json_objects(passage, "sentences", named)
        for sentence in sentences:
            document.annotations += [_json_annotation(a, named) for a in json_objects(sentence, "annotations", named)]
            document.relations += len(json_objects(sentence, "relations", named))
        document.annotations += [_json_annotation(a, named) for a in json_objects(passage, "annotations", named)]
        document.relations += len(json_objects(passage, "relations", named))
        document.add_passage(
            _integer(passage.get("offset"), f"{named}: a passage's offset"), _json_text(passage, named),
            [(_integer(sentence.get("offset"), f"{named}: a sentence's offset"), _json_text(sentence, named))
             for sentence in sentences])
    document.annotations += [_json_annotation(a, named) for a in json_objects(value, "annotations", named)]
    document.relations += len(json_objects(value, "relations", named))
    return document


def _annotation_names(annotations: Sequence[_Annotation]) -> List[str]:
    """How the report names each annotation of a document: by its id, or where it has none or one
    an earlier annotation has, by its place in the document ("annotation #3"), one name each."""
    names, seen = [], set()
    for number, annotation in enumerate(annotations, 1):
        names.append(f"annotation {annotation.id}" if annotation.id and annotation.id not in seen
                     else f"annotation #{number}")
        seen.add(annotation.id)
    return names


def _json_text(value: Dict[str, Any], where: str) -> str:
    text = value.get("text") or ""
    if not isinstance(text, str):
        raise ConversionError(f"{where}: a text that is no string")
    return text


def _json_annotation(value: Dict[str, Any], where: str) -> _Annotation:
    ann_id = str(value.get("id", ""))
    named = f"{where} annotation {ann_id}"
    infons = value.get("infons") or {}
    if not isinstance(infons, dict):
        raise ConversionError(f"{named}: 'infons' is no object")
    locations = [(_integer(location.get("offset"), f"{named}: a location's offset"),
                  _integer(location.get("length"), f"{named}: a location's length"))
                 for location in json_objects(value, "locations", named)]
    text = value.get("text")
    return _Annotation(ann_id, {str(k): "" if v is None else str(v) for k, v in infons.items()}, locations,
                       text if isinstance(text, str) else None)


def _integer(value: Any, what: str) -> int:
    """`value` (an int, or a string of one) as an int; ConversionError saying `what` it is if not."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(value.strip())
    except (AttributeError, ValueError):
        raise ConversionError(f"{what} is no integer ({value!r})") from None


# --- the Doc --------------------------------------------------------------------------------------


def _text(document: _Document, where: str, units: OffsetUnits,
          selection: AnnotationSelection) -> Tuple[str, List[int]]:
    """The document's text, its passages (or sentences) at their offsets (in `units`) with spaces
    between, and the character offsets at which its passages and sentences start."""
    text, length = "", 0  # length in `units`
    for offset, piece in sorted(document.texts, key=lambda item: item[0]):
        if offset < length:
            raise ConversionError(f"{where}: a passage or sentence at offset {offset} overlaps the text before it "
                                  f"({length} {'characters' if units == 'characters' else 'UTF-16 units'}): its "
                                  "offsets are not the document's")
        text += " " * (offset - length) + piece
        length = offset + CharacterOffsets.length(piece, units)
    offsets = selection.offsets_of(text, units)  # the annotations' offsets read with the same table
    return text, [offsets(start, where) for start in document.starts]


def _mention(annotation: _Annotation, text: str, where: str, selection: AnnotationSelection,
             report: ConversionReport, doc_index: int) -> Optional[Mention]:
    """The annotation as a Mention of `text`; None where it is left out (counted in `report`)."""
    infons = annotation.infons
    label = (infons.get("type") or "").strip()
    if not label:
        raise ConversionError(f"{where}: no type (the infon 'type' is the entity's label)")
    if not selection.keeps_type(label, where, report, doc_index):
        return None
    role = infons.get(COMPOSITE_ROLE)
    if role == "IndividualMention":
        report.issues.append(Issue(EXCLUDED, where, "a part of a composite mention (CompositeRole)", label, doc_index))
        return None
    if not annotation.locations:
        report.issues.append(Issue(EXCLUDED, where, "no location: an annotation of the whole document", label,
                                   doc_index))
        return None
    if any(length == 0 for _, length in annotation.locations):
        report.issues.append(Issue(DROPPED, where, "a location of zero length", label, doc_index))
        return None
    locations = [(offset, offset + length) for offset, length in annotation.locations]
    kb_id = mesh_ids(next((infons[key] for key in KB_ID_INFONS if infons.get(key)), ""))
    # An empty <text/> gives no text to check against (bioc's writer writes one for none).
    mention = selection.mention(text, locations, label, where, report, doc_index, given_text=annotation.text or None,
                                kb_id=kb_id)
    if mention is not None and role == "CompositeMention":
        return mention._replace(composite=True)
    return mention
