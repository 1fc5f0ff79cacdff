"""Biomedical NER corpora to spaCy Docs: one module per format, the placement of
mentions by character offsets, the conversion report, DocBin files, the dev
split and the registered spaCy readers."""

from .bioc import read_bioc
from .brat import read_brat
from .docbin import gold_token_doc, load_docs, write_docbin, write_docbins
from .iob import (
    BC5CDR_SPANS_KEY,
    DEFAULT_SPANS_KEY,
    IOB_SCHEMES,
    JNLPBA_DEV_DOCS,
    JNLPBA_SPANS_KEY,
    detect_scheme,
    read_iob,
    read_jnlpba,
)
from .jsonl import read_jsonl
from .label_studio import ANNOTATION_CHOICES, read_label_studio
from .offsets import DISCONTINUOUS, MENTION_UNITS, OFFSET_UNITS
from .pubtator import read_pubtator, read_pubtator_texts
from .report import ConversionError, ConversionReport, Issue
from .split import split_dev
from .text import read_lines

__all__ = [
    "ANNOTATION_CHOICES",
    "BC5CDR_SPANS_KEY",
    "DISCONTINUOUS",
    "MENTION_UNITS",
    "OFFSET_UNITS",
    "DEFAULT_SPANS_KEY",
    "IOB_SCHEMES",
    "JNLPBA_DEV_DOCS",
    "JNLPBA_SPANS_KEY",
    "ConversionError",
    "ConversionReport",
    "Issue",
    "detect_scheme",
    "gold_token_doc",
    "load_docs",
    "read_bioc",
    "read_brat",
    "read_iob",
    "read_jnlpba",
    "read_jsonl",
    "read_label_studio",
    "read_lines",
    "read_pubtator",
    "read_pubtator_texts",
    "split_dev",
    "write_docbin",
    "write_docbins",
]
