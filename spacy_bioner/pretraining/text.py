"""The text to pretrain on: text files, and the raw text of the task corpora's training splits."""

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from spacy.tokens import Doc
from spacy.vocab import Vocab

from ..corpora import JNLPBA_DEV_DOCS, read_jnlpba, read_pubtator, split_dev
from ..corpora.text import PathLike, iter_lines
from ..files import update_digest
from ..messages import counted
from .settings import PretrainError

if TYPE_CHECKING:
    from .evaluation_text import EvaluationText

# Relative to the project root: the embedded collection (assets/unlabeled/README.md).
DEFAULT_TEXT = Path("assets/unlabeled/biomed-sentences.txt.xz")
DEFAULT_ASSETS = Path("assets")
# The training splits only, relative to the assets directory.
JNLPBA_TRAIN = Path("jnlpba/Genia4ERtask2.iob2.xz")
BC5CDR_TRAIN = Path("bc5cdr/pubtator/CDR_TrainingSet.PubTator.txt.xz")
# Read only for its PMIDs: the training file holds some of its abstracts.
JNLPBA_TEST = Path("jnlpba/Genia4EReval2.iob2.xz")
# What task_training_text reads.
TASK_TEXT_FILES = (JNLPBA_TRAIN, JNLPBA_TEST, BC5CDR_TRAIN)


def read_text_file(path: PathLike) -> List[str]:
    """The non-blank lines of a plain, gzipped or xz-compressed UTF-8 text file (one sentence
    or document a line)."""
    return list(text_file_lines(path))


def text_file_lines(path: PathLike) -> Iterator[str]:
    """`read_text_file`'s lines, read as they are given."""
    return (line.strip() for line in iter_lines(path) if line.strip())


def read_jnlpba_splits(assets: Path, vocab: Vocab) -> Tuple[List[Doc], List[Doc], List[Doc]]:
    """JNLPBA's train, dev and test documents under `assets`: the dev split is the last
    JNLPBA_DEV_DOCS abstracts of the training file."""
    jnlpba_docs, _ = read_jnlpba(assets / JNLPBA_TRAIN, vocab)
    try:
        train_docs, dev_docs = split_dev(jnlpba_docs, JNLPBA_DEV_DOCS)
    except ValueError as e:
        raise PretrainError(f"{assets / JNLPBA_TRAIN}: {e}") from None
    test_docs, _ = read_jnlpba(assets / JNLPBA_TEST, vocab)
    return train_docs, dev_docs, test_docs


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
    train_docs, dev_docs, test_docs = read_jnlpba_splits(assets, nlp.vocab)
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


class PretrainText:
    """The lines to pretrain on: the text files in order, then the task training
    text. They are read as they are iterated, once (the text of a large
    collection is never in memory whole: `pack_sequences` keeps its tokens
    alone). `sources` describes each source for the results file; its line
    counts are complete once the text has been read.

    evaluation_text: where given, the lines of the text files that overlap it
        (the task corpora's dev and test text) are dropped, and counted in
        their source's `dropped_eval_lines` (None where not checked); `log`
        names each file that had any.
    """

    def __init__(self, text_files: Sequence[PathLike], include_task_text: bool = True,
                 assets: PathLike = DEFAULT_ASSETS, evaluation_text: Optional["EvaluationText"] = None,
                 log: Callable[[str], None] = lambda text: None) -> None:
        """Refuses (PretrainError) a path that is no file, and no text at all, before anything is read."""
        self.paths = [Path(path) for path in text_files]
        for path in self.paths:
            _check_text_file(path)
        if not self.paths and not include_task_text:
            raise PretrainError("no text to pretrain on: pass --text FILE or --task-text")
        self.include_task_text = include_task_text
        self.assets = Path(assets)
        self.evaluation_text = evaluation_text
        self.log = log
        self.sources: List[Dict[str, Any]] = []
        self._started = False

    def describe(self) -> str:
        """The sources, in a line."""
        names = [str(path) for path in self.paths] + ["the task training text"] * self.include_task_text
        return ", ".join(names)

    def __iter__(self) -> Iterator[str]:
        if self._started:
            raise RuntimeError("PretrainText is read once: make another for a second pass")
        self._started = True
        for path in self.paths:
            checked = self.evaluation_text is not None
            source = {"path": str(path), "md5": update_digest(hashlib.md5(), path).hexdigest(), "lines": 0,
                      "dropped_eval_lines": 0 if checked else None}
            self.sources.append(source)
            lines = text_file_lines(path)
            marked = self.evaluation_text.mark(lines) if checked else ((line, False) for line in lines)
            for line, overlaps in marked:
                if overlaps:
                    source["dropped_eval_lines"] += 1
                else:
                    source["lines"] += 1
                    yield line
            if source["dropped_eval_lines"]:
                self.log(f"{path}: {counted(source['dropped_eval_lines'], 'line')} dropped, overlapping the dev "
                         "or test text of JNLPBA or BC5CDR (--keep-eval-text keeps them)")
        if self.include_task_text:
            task_lines = task_training_text(self.assets)
            self.sources.append({
                "path": f"{self.assets / JNLPBA_TRAIN} (minus the last {JNLPBA_DEV_DOCS} abstracts "
                        f"and those in {self.assets / JNLPBA_TEST}), {self.assets / BC5CDR_TRAIN}",
                "lines": len(task_lines),
            })
            yield from task_lines


def _check_text_file(path: Path) -> None:
    """Refuse a `--text` path that is no file, saying what to pass instead."""
    if path.is_dir():
        example = next((child for child in sorted(path.iterdir()) if child.is_file()), path / "FILE")
        raise PretrainError(
            f"--text {path} is a folder: pass the text files in it, each with its own --text "
            f"(e.g. --text {example})"
        )
    if path.exists() and not path.is_file():
        raise PretrainError(f"--text {path}: not a file (a pipe?): pretrain reads its text twice (its digest, "
                            "which --resume checks, then its lines); write it to a file and pass that")
    if not path.is_file():
        raise PretrainError(f"--text {path}: no such file")
