"""Windows the encoder would truncate, cut into consecutive pieces that fit.

spacy-transformers silently drops every token past the encoder's maximum
length, and their entities with them; `WindowSplitter` cuts such windows
before they are encoded, and `recut`s those that came out too long.
"""

from typing import Dict, List, Optional

import numpy as np
import torch
from spacy.tokens import Doc, Span
from thinc.api import Model


class WindowSplitter:
    """Cut windows the encoder would truncate into consecutive pieces that fit.

    Span getters count spaCy tokens, and spacy-transformers silently cuts a
    window at the encoder's maximum length: every token after the cut would
    get no vector and its entities would be lost (a 2,000-character run of
    dots is one token of 2,000 wordpieces). Each distinct token string is
    tokenized once and its piece count kept, so checking the windows of a
    batch costs dictionary lookups, not a second tokenization every step.
    A token's count alone can fall short of its pieces in context (a token
    glued to the one before it: "5kb" is 5 ##k ##b, "5" and "kb" one piece
    each), so the layer checks the encoded windows and `recut`s those that
    came out too long.
    """

    # Bounds the memory of a long-running service fed open-ended text.
    max_cached = 1_000_000

    def __init__(self) -> None:
        self._tokenizer = None
        self._counts: Dict[int, int] = {}

    def __call__(self, spans: List[List[Span]], model: Model) -> List[List[Span]]:
        """Each document's windows, those the encoder would truncate cut into pieces that fit."""
        tokenizer = model.tokenizer
        if tokenizer is not self._tokenizer or len(self._counts) > self.max_cached:
            self._tokenizer, self._counts = tokenizer, {}
        limit = _max_pieces(model)
        output = []
        for doc_spans in spans:
            counts = self._piece_counts(doc_spans[0].doc) if doc_spans else []
            output.append([piece for window in doc_spans for piece in _fit(window, counts, limit)])
        return output

    def recut(
        self, spans: List[List[Span]], lengths: List[int], offsets: np.ndarray, model: Model
    ) -> Optional[List[List[Span]]]:
        """The windows again, those longer than the encoder's limit once
        encoded cut before the token where their pieces overflow; None if no
        window was cut (every window fits, or only windows of one token
        do not).

        lengths: the encoded length of each window (special tokens
        included), in the order of the flattened `spans`; offsets: (n,
        width, 2) the character offsets of each window's pieces in its text.
        A window whose first token alone overflows keeps it alone (it is cut
        after it), as `__call__` does; a window of one token is left as it is.
        """
        limit = max_length(model)
        if max(lengths, default=0) <= limit:
            return None
        output, row, cut_any = [], 0, False
        for doc_spans in spans:
            windows = []
            for window in doc_spans:
                if lengths[row] > limit and len(window) > 1:
                    cut_any = True
                    # Pieces 1 .. limit - 2 fit beside [CLS] and [SEP]; piece limit - 1 is the first that does not.
                    overflow = offsets[row, limit - 1, 0]
                    starts = window.doc.to_array("IDX")[window.start : window.end] - window.start_char
                    cut = max(int(np.searchsorted(starts, overflow, side="right")) - 1, 1)
                    windows.extend([window[:cut], window[cut:]])
                else:
                    windows.append(window)
                row += 1
            output.append(windows)
        return output if cut_any else None

    def _piece_counts(self, doc: Doc) -> List[int]:
        """Wordpieces per token of `doc` (special tokens not included)."""
        orths = doc.to_array("ORTH").tolist()
        new = [orth for orth in set(orths) if orth not in self._counts]
        if new:
            # verbose=False: one token may have more pieces than the encoder takes
            # (its window is truncated); the front end would log a warning for it.
            encoded = self._tokenizer([doc.vocab.strings[o] for o in new], add_special_tokens=False, verbose=False)
            self._counts.update(zip(new, map(len, encoded["input_ids"])))
        return [self._counts[orth] for orth in orths]


def max_length(model: Model) -> int:
    """The most wordpieces the encoder takes in one sequence, special tokens included."""
    tokenizer = model.tokenizer
    return min(tokenizer.model_max_length, max_positions(model.transformer, tokenizer.model_max_length))


def max_positions(transformer: torch.nn.Module, default: int) -> int:
    """The most positions `transformer` embeds: its `max_position_embeddings`
    (`default` if it has none, or none above 0: XLNet's -1), less the offset
    of RoBERTa-style embeddings.

    Those (RoBERTa, XLM-R, MPNet, ...) number positions from `padding_idx + 1`,
    so RoBERTa's 514 position embeddings take 512 wordpieces; their hub
    tokenizers often leave `model_max_length` unset (a huge default), and a
    longer window would index past the embeddings.
    """
    positions = getattr(transformer.config, "max_position_embeddings", None)
    # None, or XLNet's -1: no limit of the encoder's own.
    positions = positions if isinstance(positions, int) and positions > 0 else default
    embeddings = getattr(transformer, "embeddings", None)
    padding_idx = getattr(embeddings, "padding_idx", None)
    table = getattr(embeddings, "position_embeddings", None)
    if isinstance(padding_idx, int) and isinstance(table, torch.nn.Embedding):
        positions = min(positions, table.num_embeddings - padding_idx - 1)
    return positions


def _max_pieces(model: Model) -> int:
    """The most wordpieces of text in one sequence, beside the special tokens."""
    return max_length(model) - model.tokenizer.num_special_tokens_to_add(pair=False)


def _fit(window: Span, counts: List[int], limit: int) -> List[Span]:
    window_counts = counts[window.start : window.end]
    if sum(window_counts) <= limit:
        return [window]
    pieces, start, used = [], 0, 0
    for i, count in enumerate(window_counts):
        # A single token longer than the limit gets a window of its own.
        if used + count > limit and i > start:
            pieces.append(window[start:i])
            start, used = i, 0
        used += count
    pieces.append(window[start:])
    return pieces
