"""The registered spaCy readers: training examples straight from the corpus files
or from converted DocBins (several corpora, one per head, chained)."""

import warnings
from itertools import islice
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, Optional

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example

from .docbin import gold_token_doc, iter_docs
from .iob import (
    BC5CDR_SPANS_KEY,
    DEFAULT_SPANS_KEY,
    JNLPBA_DEV_DOCS,
    JNLPBA_SPANS_KEY,
    check_iob_options,
    read_iob,
    read_jnlpba,
)
from .pubtator import read_pubtator, read_pubtator_texts
from .split import split_dev


def _within(docs: Iterable[Doc], max_length: int, path: str, limit: int = 0) -> Iterator[Doc]:
    """The documents of at most `max_length` tokens, the first `limit` of them (if > 0); a warning,
    at the end, of those left out."""
    longer = kept = 0
    for doc in docs:
        if limit and kept == limit:
            break
        if len(doc) <= max_length:
            kept += 1
            yield doc
        else:
            longer += 1
    if longer:
        warnings.warn(f"{path}: {longer} documents longer than max_length {max_length} left out")


def _examples_from_pretokenized(nlp: Language, docs: Iterable[Doc]) -> Iterator[Example]:
    """Examples whose predicted docs keep the reference tokens and sentences.

    spacy.Corpus would re-tokenize the text (losing GENIA tokens) or, with
    gold_preproc, cut documents into sentences (losing document context).
    """
    for ref in docs:
        yield Example(gold_token_doc(nlp.vocab, ref), ref)


@spacy.registry.readers("spacy_bioner.IOB.v1")
def configure_iob_reader(
    path: str,
    scheme: str = "auto",
    n_sents: int = 1,
    spans_key: str = DEFAULT_SPANS_KEY,
    documents: Optional[str] = None,
) -> Callable[[Language], Iterable[Example]]:
    """Training examples from an IOB/CoNLL file (see `read_iob`); `documents`:
    the PubTator file its sentences were cut from, to regroup them into."""
    # When the config is resolved, not at the first evaluation of a dev corpus.
    check_iob_options(path, scheme, n_sents, documents is not None)

    def read(nlp: Language) -> Iterator[Example]:
        texts = read_pubtator_texts(documents) if documents else None
        docs, _ = read_iob(path, nlp.vocab, scheme=scheme, n_sents=n_sents, spans_key=spans_key, documents=texts)
        yield from _examples_from_pretokenized(nlp, docs)

    return read


@spacy.registry.readers("spacy_bioner.JNLPBA.v1")
def configure_jnlpba_reader(
    path: str,
    spans_key: str = JNLPBA_SPANS_KEY,
    dev_docs: int = 0,
    part: str = "all",
) -> Callable[[Language], Iterable[Example]]:
    """Training examples from a JNLPBA file, one per abstract.

    `part="train"` leaves out the last `dev_docs` abstracts and `part="dev"`
    keeps only them (the standard dev split: `dev_docs=200` on the training
    file); both need 1 <= dev_docs < the number of abstracts (ValueError).
    """
    if part not in ("all", "train", "dev"):
        raise ValueError(f"part must be 'all', 'train' or 'dev', got {part!r}")
    # Checked here too, before the file is read: a config that leaves out
    # dev_docs must fail when resolved, not at the first evaluation.
    if part != "all" and dev_docs < 1:
        raise ValueError(
            f"spacy_bioner.JNLPBA.v1: part={part!r} needs dev_docs, the number of abstracts at the end "
            f"of {path} held out as dev (the standard split: dev_docs = {JNLPBA_DEV_DOCS}), got {dev_docs}"
        )

    def read(nlp: Language) -> Iterator[Example]:
        docs, _ = read_jnlpba(path, nlp.vocab, spans_key=spans_key)
        if part != "all":
            try:
                train, dev = split_dev(docs, dev_docs)
            except ValueError as e:
                raise ValueError(f"{path}: {e}") from None
            docs = train if part == "train" else dev
        yield from _examples_from_pretokenized(nlp, docs)

    return read


@spacy.registry.readers("spacy_bioner.PubTator.v1")
def configure_pubtator_reader(
    path: str, spans_key: str = BC5CDR_SPANS_KEY
) -> Callable[[Language], Iterable[Example]]:
    """Training examples from a PubTator file, tokenized by the pipeline's
    tokenizer (use the BioTokenizer so that the mentions align)."""

    def read(nlp: Language) -> Iterator[Example]:
        docs, report = read_pubtator(path, nlp, spans_key=spans_key)
        if report.dropped or report.expanded:  # `convert` prints them, and refuses past --max-loss
            first = (report.dropped + report.expanded)[0]
            warnings.warn(
                f"{path}: {len(report.dropped)} mentions dropped and {len(report.expanded)} widened to the "
                f"pipeline's tokens, {report.loss_fraction:.3%} of them (first at {first.where}: {first.reason}); "
                "the BioTokenizer splits where BC5CDR's mentions start and end, and `python -m spacy_bioner "
                "convert pubtator --max-examples 0` lists each"
            )
        for ref in docs:
            yield Example(nlp.make_doc(ref.text), ref)

    return read


@spacy.registry.readers("spacy_bioner.MultiCorpus.v1")
def configure_multi_corpus(
    paths: Dict[str, str], limit: int = 0, max_length: int = 0, gold_tokens: bool = True
) -> Callable[[Language], Iterable[Example]]:
    """Chain several .spacy corpora (e.g. JNLPBA and BC5CDR) into one.

    paths: corpus name -> .spacy file, or folder of them (`convert --shard-size`). A dict, not a list, because config
        interpolation (`${paths.x}`) works on whole values, not inside lists.
    limit, max_length: the first N documents, and a length cap in the
        corpus's tokens, per corpus: longer documents are left out, with a
        warning (spaCy's Corpus splits them into sentences; these heads
        learn from whole abstracts).
    gold_tokens: keep the corpus's tokens and sentences (evaluation on gold
        tokens, as published scores are); False tokenizes the text with the
        pipeline's tokenizer, as it will see raw text after training.
    """

    if not paths:
        raise ValueError("spacy_bioner.MultiCorpus.v1: paths names no corpus (give name = path pairs)")
    for name, value in (("limit", limit), ("max_length", max_length)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"spacy_bioner.MultiCorpus.v1: {name} must be a whole number, 0 for none, not {value!r}")
    empty = [name for name, path in paths.items() if not str(path)]
    if empty:
        raise ValueError(f"spacy_bioner.MultiCorpus.v1: no path given for {', '.join(empty)}")

    def read(nlp: Language) -> Iterator[Example]:
        # Checked when read, as spaCy's Corpus does: `spacy debug config` resolves a saved
        # pipeline's config, whose corpora need not be there.
        missing = [f"{name}={path}" for name, path in paths.items() if not Path(path).exists()]
        if missing:
            raise ValueError(
                f"MultiCorpus: no such corpus file or folder: {', '.join(missing)}. "
                "Convert the corpora first (`python -m spacy_bioner convert`, or `spacy project run convert`)."
            )
        for path in paths.values():
            docs = iter_docs(path, nlp.vocab)
            # The limit inside _within, so that its warning comes once the documents are read.
            docs = _within(docs, max_length, path, limit) if max_length else islice(docs, limit or None)
            if gold_tokens:
                yield from _examples_from_pretokenized(nlp, docs)
            else:
                yield from (Example(nlp.make_doc(doc.text), doc) for doc in docs)

    return read
