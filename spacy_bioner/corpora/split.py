"""The dev split of a training file: its last N documents are dev."""

from collections import deque
from typing import Deque, Iterable, Iterator, List, Sequence, Tuple, TypeVar

T = TypeVar("T")


class DevSplitError(ValueError):
    """A dev split that leaves one of its parts empty."""


def split_dev(docs: Sequence[T], dev_docs: int, *, name: str = "dev_docs") -> Tuple[List[T], List[T]]:
    """The training and dev parts of `docs`: all but the last `dev_docs`, and those.

    Raises DevSplitError unless 1 <= dev_docs < len(docs) (`check_dev_docs`).
    """
    check_dev_docs(len(docs), dev_docs, name=name)
    split = len(docs) - dev_docs
    return list(docs[:split]), list(docs[split:])


def split_dev_as_read(docs: Iterable[T], dev_docs: int, *, name: str = "dev_docs") -> Iterator[Tuple[bool, T]]:
    """(whether it is dev, document) for each of `docs`, as they are read: `split_dev` of documents
    too many to hold, of which only the last `dev_docs` are held, until the documents end. With
    `dev_docs` 0 none is dev; else DevSplitError, at the end, unless 1 <= dev_docs < their number."""
    held: Deque[T] = deque()
    n_docs = 0
    for doc in docs:
        n_docs += 1
        held.append(doc)
        if len(held) > dev_docs:
            yield False, held.popleft()
    if dev_docs:
        check_dev_docs(n_docs, dev_docs, name=name)
        for doc in held:
            yield True, doc


def check_dev_docs(n_docs: int, dev_docs: int, *, name: str = "dev_docs") -> None:
    """Raise DevSplitError, naming the setting `name` (e.g. "--dev-docs"), unless 1 <= dev_docs <
    n_docs: an empty part would otherwise train or evaluate on nothing, or evaluate on the training
    data, without a word."""
    if dev_docs < 1 or dev_docs >= n_docs:
        problem = "leaves no dev documents" if dev_docs < 1 else "leaves no training documents"
        fix = (
            f"set {name} to the number of documents at the end to hold out as dev, from 1 to {n_docs - 1}"
            if n_docs > 1
            else "a dev split needs at least 2 documents"
        )
        raise DevSplitError(f"{name} {dev_docs} {problem} ({n_docs} in all): {fix}")
