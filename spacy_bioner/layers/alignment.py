"""Tokens to wordpieces by character offsets, in a few NumPy operations per batch.

spacy-transformers' `get_alignment_via_offset_mapping` gives each spaCy token
of a batch the wordpieces whose characters it covers, building a Python set
per token and a Token object per token of each window: host work on every
batch that grows with the text and that a GPU cannot take over
(benchmarks/README.md measures it). `align_by_offsets` computes the same Ragged (tests compare them) from
the documents' token offsets (`Doc.to_array`), the windows' bounds and the
tokenizer's offsets, for all windows at once.

The alignment, as spacy-transformers defines it: tokens are numbered through
the batch, every token of each document in order, documents in the order of
their first window. A window's characters belong to its tokens, each token
also owning the one character after it unless the next token starts there.
A wordpiece belongs to every token that owns one of its characters, and it
is numbered `window * width + position` in the padded batch.
"""

from typing import List

import numpy as np
from spacy.attrs import IDX, LENGTH
from spacy.tokens import Span
from thinc.types import Ints3d, Ragged


def align_by_offsets(spans: List[Span], offsets: Ints3d) -> Ragged:
    """For each token of the windows' documents, its wordpieces' indices in the
    flattened padded batch, in increasing order.

    spans: the batch's windows.
    offsets: (windows, width, 2) character offsets of each wordpiece in its
        window's text, (0, 0) for special and padding pieces.
    """
    if len(spans) != len(offsets):
        raise ValueError(f"Cannot align {len(spans)} windows with the offsets of {len(offsets)}.")
    n_windows = len(spans)
    width = max(offsets.shape[1], 1) if n_windows else 1
    n_pieces = n_windows * width
    # Per document: where its tokens and characters start in the batch; the
    # characters of consecutive documents are kept apart by one.
    seen = {}
    token_chars = []
    # Per window: its first and end token, its first character, its length.
    windows = np.zeros((n_windows, 4), dtype="int64")
    n_tokens = n_chars = 0
    for i, span in enumerate(spans):
        doc = span.doc
        if id(doc) not in seen:
            seen[id(doc)] = (n_tokens, n_chars)
            chars = doc.to_array([IDX, LENGTH]).astype("int64").reshape(-1, 2)
            chars[:, 0] += n_chars
            token_chars.append(chars)
            n_tokens += len(doc)
            n_chars = int(chars[-1].sum()) + 2 if len(doc) else n_chars + 1
        first_token, first_char = seen[id(doc)]
        start_char, end_char = span.start_char, span.end_char
        windows[i] = (first_token + span.start, first_token + span.end, first_char + start_char, end_char - start_char)
    if not n_tokens:
        return Ragged(np.zeros((0,), dtype="i"), np.zeros((0,), dtype="i"))
    token_chars = np.concatenate(token_chars)
    starts, ends = token_chars[:, 0], token_chars.sum(axis=1)
    # Every character of every wordpiece: its piece, window and place in the window.
    counts = np.maximum(offsets[:, :, 1] - offsets[:, :, 0], 0).ravel()
    piece = np.repeat(np.arange(n_pieces), counts)
    window = piece // width
    piece_starts = offsets[:, :, 0].ravel()
    in_window = np.arange(piece.size) - np.repeat(np.cumsum(counts) - counts, counts) + piece_starts[piece]
    char = windows[window, 2] + in_window
    # The owner: the last of the window's tokens starting at or before the
    # character, if the character is not past that token's end.
    token = np.minimum(np.searchsorted(starts, char, side="right") - 1, windows[window, 1] - 1)
    owned = (in_window >= 0) & (in_window <= windows[window, 3]) & (token >= windows[window, 0])
    owned &= char <= ends[np.maximum(token, 0)]
    keys = token[owned] * n_pieces + piece[owned]
    # A piece's characters run through its tokens in order, so a repeated
    # (token, piece) pair is a run of neighbours: keep one of each run.
    if keys.size:
        keys = np.sort(keys[np.r_[True, keys[1:] != keys[:-1]]])
    token_of_key, piece_of_key = np.divmod(keys, n_pieces)
    return Ragged(piece_of_key.astype("i"), np.bincount(token_of_key, minlength=n_tokens).astype("i"))
