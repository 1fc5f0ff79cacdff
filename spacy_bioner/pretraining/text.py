"""The text to pretrain on: text files, and the raw text of the task corpora's training splits."""

import hashlib
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from ..corpora import JNLPBA_DEV_DOCS, read_jnlpba, read_lines, read_pubtator, split_dev
from ..corpora.text import PathLike
from ..files import update_digest
from .settings import PretrainError

# Relative to the project root: the embedded collection (assets/unlabeled/README.md).
DEFAULT_TEXT = Path("assets/unlabeled/biomed-sentences.txt.xz")
DEFAULT_ASSETS = Path("assets")
# The training splits only, relative to the assets directory.
JNLPBA_TRAIN = Path("jnlpba/Genia4ERtask2.iob2.gz")
BC5CDR_TRAIN = Path("bc5cdr/pubtator/CDR_TrainingSet.PubTator.txt.gz")
# Read only for its PMIDs: the training file holds some of its abstracts.
JNLPBA_TEST = Path("jnlpba/Genia4EReval2.iob2.gz")
# What task_training_text reads.
TASK_TEXT_FILES = (JNLPBA_TRAIN, JNLPBA_TEST, BC5CDR_TRAIN)


def read_text_file(path: PathLike) -> List[str]:
    """The non-blank lines of a plain, gzipped or xz-compressed UTF-8 text file (one sentence
    or document a line)."""
    return [line.strip() for line in read_lines(path) if line.strip()]


def task_training_text(assets: PathLike = DEFAULT_ASSETS) -> List[str]:
    """The raw text of the JNLPBA and BC5CDR *training* splits, never dev or test.

    JNLPBA: the sentences of the training file except its last 200 abstracts
    (the dev split) and the abstracts whose PMID is in the test file (the
    official training file shares some with it), tokens joined with spaces.
    BC5CDR: title + " " + abstract of each training-set document.
    """
    from ..tokenizer import make_bio_nlp

    assets = Path(assets)
    nlp = make_bio_nlp()
    jnlpba_docs, _ = read_jnlpba(assets / JNLPBA_TRAIN, nlp.vocab)
    try:
        train_docs, dev_docs = split_dev(jnlpba_docs, JNLPBA_DEV_DOCS)
    except ValueError as e:
        raise PretrainError(f"{assets / JNLPBA_TRAIN}: {e}") from None
    test_docs, _ = read_jnlpba(assets / JNLPBA_TEST, nlp.vocab)
    held_out = {doc.user_data.get("pmid") for doc in dev_docs + test_docs} - {None}
    lines = [
        " ".join(token.text for token in sent)
        for doc in train_docs
        if doc.user_data.get("pmid") not in held_out
        for sent in doc.sents
    ]
    bc5cdr_docs, _ = read_pubtator(assets / BC5CDR_TRAIN, nlp)
    lines.extend(doc.text for doc in bc5cdr_docs)
    return [line for line in lines if line.strip()]


def collect_text(
    text_files: Sequence[PathLike], include_task_text: bool = True, assets: PathLike = DEFAULT_ASSETS
) -> Tuple[List[str], List[Dict[str, Any]]]:
    """All lines to pretrain on, and a description of each source (for the
    results file): the text files in order, then the task training text."""
    paths = [Path(path) for path in text_files]
    for path in paths:  # all of them before any is read
        _check_text_file(path)
    lines: List[str] = []
    sources: List[Dict[str, Any]] = []
    for path in paths:
        file_lines = read_text_file(path)
        sources.append({"path": str(path), "md5": update_digest(hashlib.md5(), path).hexdigest(), "lines": len(file_lines)})
        lines.extend(file_lines)
    if include_task_text:
        task_lines = task_training_text(assets)
        sources.append(
            {
                "path": f"{Path(assets) / JNLPBA_TRAIN} (minus the last {JNLPBA_DEV_DOCS} abstracts "
                f"and those in {Path(assets) / JNLPBA_TEST}), "
                f"{Path(assets) / BC5CDR_TRAIN}",
                "lines": len(task_lines),
            }
        )
        lines.extend(task_lines)
    if not lines:
        raise PretrainError("no text to pretrain on: pass --text FILE or --include-task-text")
    return lines, sources


def _check_text_file(path: Path) -> None:
    """Refuse a `--text` path that is no file, saying what to pass instead."""
    if path.is_dir():
        example = next((child for child in sorted(path.iterdir()) if child.is_file()), path / "FILE")
        raise PretrainError(
            f"--text {path} is a folder: pass the text files in it, each with its own --text "
            f"(e.g. --text {example})"
        )
    if not path.is_file():
        raise PretrainError(f"--text {path}: no such file")
