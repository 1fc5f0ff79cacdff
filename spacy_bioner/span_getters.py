"""The encoder's windows, placed by the words of a document, not its whitespace.

spacy-transformers' `strided_spans.v1` counts every spaCy token, whitespace
tokens (a leading line end, the line ends of wrapped text, a double space)
among them. Those have no wordpieces in a WordPiece encoder (the configs'),
yet each moves every window after it by a token: a word near a window's
edge then sees other context, and the same abstract got other entities
after a leading space (a few in a hundred on the test abstracts). `spacy_bioner.strided_spans.v1` counts only the
tokens on a head's chain (chain.py: not blank), so whitespace changes no
window's words; on a document without blank tokens its windows are
spacy-transformers'.
"""

from functools import partial
from typing import Callable, Iterable, List, Tuple

from spacy.tokens import Doc, Span
from spacy_transformers.span_getters import get_strided_spans as get_token_strided_spans
from spacy_transformers.util import registry

from .chain import chain_of


@registry.span_getters("spacy_bioner.strided_spans.v1")
def configure_strided_spans(window: int, stride: int) -> Callable[[Iterable[Doc]], List[List[Span]]]:
    """Windows of `window` words, each `stride` words after the last (overlapping where
    `stride` < `window`), whitespace tokens inside or beside them uncounted."""
    return partial(get_strided_spans, window=window, stride=stride)


def get_strided_spans(docs: Iterable[Doc], window: int, stride: int) -> List[List[Span]]:
    """Each document's windows (`configure_strided_spans`). Every token is in one: a window
    takes the whitespace after its last word, the first window also any before the first word."""
    spans = []
    for doc in docs:
        words = chain_of(doc)
        if words is None or not len(words):
            spans.extend(get_token_strided_spans([doc], window=window, stride=stride))
            continue
        bounds = strided_bounds(len(words), window, stride)
        starts = [0] + [int(words[start]) for start, _ in bounds[1:]]
        ends = [int(words[end]) if end < len(words) else len(doc) for _, end in bounds]
        spans.append([doc[start:end] for start, end in zip(starts, ends)])
    return spans


def strided_bounds(n: int, window: int, stride: int) -> List[Tuple[int, int]]:
    """(start, end) of the windows that spacy-transformers' `get_strided_spans` cuts from `n` tokens."""
    bounds = []
    start = 0
    for _ in range(n // stride):
        bounds.append((start, min(start + window, n)))
        if start + window >= n:
            break
        start += stride
    else:
        if start < n:
            bounds.append((start, n))
    return bounds
