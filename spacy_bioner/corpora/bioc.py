"""BioC corpora (XML or JSON: BioCreative's corpora, PubTator3's exports) to spaCy Docs.

One Doc per BioC document, its `id` as `doc.user_data["pmid"]`, as the other
readers keep a document's id. Its text is its passages' (or, in a passage
without text, its sentences') texts, each at its offset, with spaces between:
a PubMed title and abstract (offsets 0 and len(title) + 1) give PubTator's
"title + space + abstract". A sentence starts at each passage. Offsets are
the document's, counted in characters (code points) as Python counts them,
or with `offset_units="utf-16"` in UTF-16 units, as BioC's Java tools count;
the two differ after a character outside the Basic Multilingual Plane. An
annotation whose text is not the document's at its offsets is an error
naming it (and the units in which they would match).

The annotations of the document, its passages and its sentences are its
mentions: the label is the infon "type", the kb id the first of the infons
"identifier", "MESH" and "concept_id" (a MeSH id of "-1", none, is empty, as
in PubTator files); an annotation's text is checked against the document's.
An annotation of several locations is one span, or dropped or covered where
words lie between them, as `offsets.AnnotationSelection` says. BC5CDR's
composite mentions ("CompositeRole": "CompositeMention") are kept whole and
reported, as `read_pubtator` keeps them; their parts ("IndividualMention")
are left out and counted ("excluded"). Relations are counted and ignored.

Read with `bioc` (PyPI, BioC's Python library: lxml's iterparse for XML, a
document at a time); written here: placing the mentions on the pipeline's
tokens, with a report, which `bioc` has no notion of.
"""

import json
from pathlib import Path
from typing import Any, Iterable, Iterator, List, Optional, Sequence, Tuple

from spacy.language import Language
from spacy.tokens import Doc

from ..compressed import DECOMPRESSION_ERRORS, describe_error, open_bytes
from .iob import DEFAULT_SPANS_KEY
from .offsets import AnnotationSelection, CharacterOffsets, Discontinuous, Mention, OffsetUnits, annotated_doc
from .pubtator import mesh_ids
from .report import EXCLUDED, RELATION, ConversionError, ConversionReport, Issue
from .text import PathLike

# The infons of an annotation that hold its kb id, in the order they are looked for.
KB_ID_INFONS = ("identifier", "MESH", "concept_id")
COMPOSITE_ROLE = "CompositeRole"


def read_bioc(
    path: PathLike,
    nlp: Language,
    *,
    spans_key: str = DEFAULT_SPANS_KEY,
    entity_types: Optional[Sequence[str]] = None,
    discontinuous: Discontinuous = "drop",
    offset_units: OffsetUnits = "characters",
) -> Tuple[List[Doc], ConversionReport]:
    """Read a BioC XML or JSON collection (plain, .gz or .xz; told by its first character): one Doc
    per document (see the module docstring)."""
    selection = AnnotationSelection(entity_types, discontinuous, offset_units)
    path = Path(path)
    report = ConversionReport(source=str(path))
    docs: List[Doc] = []
    for document in _documents(path):
        doc_id = document.id
        where = f"{path} document {doc_id}"
        if not isinstance(doc_id, str) or not doc_id.strip():
            raise ConversionError(f"{path}: document {len(docs) + 1} has no id")
        text, starts = _text(document, where, offset_units)
        mentions: List[Mention] = []
        for annotation in _of_every_level(document, "annotations"):
            mention = _mention(annotation, text, f"{where} annotation {annotation.id}", selection, report, len(docs))
            if mention is not None:
                mentions.append(mention)
        for _ in _of_every_level(document, "relations"):
            report.issues.append(Issue(RELATION, where, "relation ignored", doc_index=len(docs)))
        docs.append(annotated_doc(nlp, text, mentions, report, len(docs), spans_key, where, doc_id=doc_id,
                                  sentence_starts_at=starts))
    if not docs:
        raise ConversionError(f"{path}: no BioC document")
    selection.warn_of_types_not_found(str(path))
    report.count_docs(docs, spans_key)
    return docs, report


def _documents(path: Path) -> Iterator[Any]:
    """The BioC documents of the file, a document at a time where it is XML."""
    try:
        from bioc import biocjson, biocxml
    except ImportError:
        raise ConversionError("reading BioC needs the bioc package: pip install 'spacy-bioner[bioc]'") from None
    from lxml import etree

    try:
        with open_bytes(path) as f:
            first = f.read1(4096).lstrip()[:1]
        if first == b"<":
            with open_bytes(path) as f:
                yield from biocxml.BioCXMLDocumentReader(f)
        elif first in (b"{", b"["):
            with open_bytes(path) as f:
                data = json.load(f)
            # A collection, a list of documents or one document (PubTator3's exports are each of these).
            documents = data.get("documents", [data]) if isinstance(data, dict) else data
            yield from (biocjson.decoder.parse_doc(document) for document in documents)
        else:
            raise ConversionError(f"{path}: neither BioC XML nor BioC JSON (it begins with {first!r})")
    except ConversionError:
        raise
    except FileNotFoundError:
        raise ConversionError(f"{path}: no such file") from None
    except etree.XMLSyntaxError as e:
        raise ConversionError(f"{path}:{e.lineno}: not XML ({e.msg})") from None
    except json.JSONDecodeError as e:
        raise ConversionError(f"{path}:{e.lineno}: not JSON ({e.msg})") from None
    except (KeyError, TypeError, ValueError) as e:
        raise ConversionError(f"{path}: not BioC ({type(e).__name__}: {e}; a collection of documents, each with "
                              "its passages, annotations and relations)") from None
    except (OSError, *DECOMPRESSION_ERRORS) as e:
        raise ConversionError(f"{path}: {describe_error(path, e)}") from None


def _text(document: Any, where: str, units: OffsetUnits) -> Tuple[str, List[int]]:
    """The document's text, its passages (or their sentences) at their offsets (in `units`) with
    spaces between, and the character offsets at which its passages start."""
    pieces: List[Tuple[int, str]] = []
    starts = []
    for passage in document.passages:
        starts.append(passage.offset)
        if passage.text is not None:
            pieces.append((passage.offset, passage.text))
        else:
            pieces.extend((sentence.offset, sentence.text or "") for sentence in passage.sentences)
    text, length = "", 0  # length in `units`
    for offset, piece in pieces:
        if offset < length:
            raise ConversionError(f"{where}: a passage or sentence at offset {offset} overlaps the text before it "
                                  f"({length} {'characters' if units == 'characters' else 'UTF-16 units'}): its "
                                  "offsets are not the document's")
        text += " " * (offset - length) + piece
        length = offset + (len(piece) if units == "characters" else len(piece.encode("utf-16-le")) // 2)
    if not text.strip():
        raise ConversionError(f"{where}: no text")
    offsets = CharacterOffsets(text, units)
    return text, [offsets(start, where) for start in starts]


def _of_every_level(document: Any, name: str) -> Iterable[Any]:
    """The annotations or relations (`name`) of the document's passages, their sentences and the document."""
    for passage in document.passages:
        yield from getattr(passage, name)
        for sentence in passage.sentences:
            yield from getattr(sentence, name)
    yield from getattr(document, name)


def _mention(annotation: Any, text: str, where: str, selection: AnnotationSelection, report: ConversionReport,
             doc_index: int) -> Optional[Mention]:
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
    locations = sorted((location.offset, location.offset + location.length) for location in annotation.locations)
    kb_id = mesh_ids(next((infons[key] for key in KB_ID_INFONS if infons.get(key)), ""))
    mention = selection.mention(text, locations, label, where, report, doc_index, given_text=annotation.text,
                                kb_id=kb_id)
    if mention is not None and role == "CompositeMention":
        return mention._replace(composite=True)
    return mention
