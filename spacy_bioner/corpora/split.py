"""The dev split of a training file: its last N documents are dev."""

from typing import List, Sequence, Tuple, TypeVar

T = TypeVar("T")


def split_dev(docs: Sequence[T], dev_docs: int, *, name: str = "dev_docs") -> Tuple[List[T], List[T]]:
    """The training and dev parts of `docs`: all but the last `dev_docs`, and those.

    Raises ValueError, naming the setting `name` (e.g. "--dev-docs"), unless
    1 <= dev_docs < len(docs): an empty part would otherwise train or evaluate
    on nothing, or evaluate on the training data, without a word.
    """
    if dev_docs < 1 or dev_docs >= len(docs):
        problem = "leaves no dev documents" if dev_docs < 1 else "leaves no training documents"
        fix = (
            f"set {name} to the number of documents at the end to hold out as dev, from 1 to {len(docs) - 1}"
            if len(docs) > 1
            else "a dev split needs at least 2 documents"
        )
        raise ValueError(f"{name} {dev_docs} {problem} ({len(docs)} in all): {fix}")
    split = len(docs) - dev_docs
    return list(docs[:split]), list(docs[split:])
