"""Biomedical NER corpora to spaCy Docs: one module per format, the placement of
mentions by character offsets, the conversion report, DocBin files, the dev
split and the registered spaCy readers."""

from .bioc import iter_bioc, read_bioc
from .brat import iter_brat, read_brat
from .docbin import (
    DocBinWriter,
    commit_docbins,
    docbin_files,
    gold_token_doc,
    iter_docs,
    load_docs,
    not_written_by_writer,
    write_docbin,
)
from .iob import (
    BC5CDR_SPANS_KEY,
    DEFAULT_SPANS_KEY,
    IOB_SCHEMES,
    JNLPBA_DEV_DOCS,
    JNLPBA_SPANS_KEY,
    detect_scheme,
    iter_iob,
    iter_jnlpba,
    read_iob,
    read_jnlpba,
)
from .jsonl import iter_jsonl, read_jsonl
from .label_studio import ANNOTATION_CHOICES, iter_label_studio, read_label_studio
from .offsets import DISCONTINUOUS, MENTION_UNITS, OFFSET_UNITS
from .pubtator import iter_pubtator, read_pubtator, read_pubtator_texts
from .report import ConversionError, ConversionReport, Issue
from .split import DevSplitError, split_dev, split_dev_as_read
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
    "DevSplitError",
    "DocBinWriter",
    "Issue",
    "commit_docbins",
    "detect_scheme",
    "docbin_files",
    "gold_token_doc",
    "iter_bioc",
    "iter_brat",
    "iter_docs",
    "iter_iob",
    "iter_jnlpba",
    "iter_jsonl",
    "iter_label_studio",
    "iter_pubtator",
    "load_docs",
    "not_written_by_writer",
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
    "split_dev_as_read",
    "write_docbin",
]
