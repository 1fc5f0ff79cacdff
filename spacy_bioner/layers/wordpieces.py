"""Window texts to wordpiece arrays through the tokenizer's Rust backend (`WordpieceEncoder`)."""

from typing import Dict, List, Tuple

import numpy as np
from spacy_transformers.data_classes import WordpieceBatch
from transformers import PreTrainedTokenizerFast


class WordpieceEncoder:
    """Window texts to wordpiece arrays, through the tokenizer's Rust backend.

    spacy-transformers tokenizes every window on every step through the
    Hugging Face tokenizer's Python front end, then converts every id back to
    its string one call at a time: a large share of the host work of a
    training step and of `nlp.pipe` (benchmarks/README.md). This gives the same
    ids, offsets, strings and mask (tests compare them) at half the cost, and
    in training remembers each window's encoding: the strided windows of a
    training document are the same every epoch.
    """

    # Windows remembered in training (ids and offsets, ~2 kB each); JNLPBA and
    # BC5CDR together have about 10,000.
    max_cached = 50_000

    def __init__(self) -> None:
        self._tokenizer = None
        self._cache: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}

    def _bind(self, tokenizer: PreTrainedTokenizerFast) -> None:
        from tokenizers import Tokenizer

        # A private copy of the backend: the front end leaves its padding and
        # truncation settings on the shared one after every call.
        self._backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        self._backend.no_padding()
        self._backend.no_truncation()
        self._strings = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        self._with_type_ids = "token_type_ids" in tokenizer.model_input_names
        self._tokenizer, self._cache = tokenizer, {}

    def __call__(
        self, tokenizer: PreTrainedTokenizerFast, texts: List[str], remember: bool
    ) -> Tuple[WordpieceBatch, np.ndarray]:
        """The padded batch, and the (n, width, 2) character offsets of each piece."""
        if tokenizer is not self._tokenizer:
            self._bind(tokenizer)
        cache = self._cache if remember else {}
        new = list({text: None for text in texts if text not in cache})
        for text, encoding in zip(new, self._backend.encode_batch(new, add_special_tokens=True)):
            cache[text] = (
                np.asarray(encoding.ids, dtype="int64"),
                np.asarray(encoding.offsets, dtype="int64").reshape(-1, 2),
            )
        encoded = [cache[text] for text in texts]
        if len(self._cache) > self.max_cached:
            self._cache = {}
        lengths = [len(ids) for ids, _ in encoded]
        width = max(lengths)
        input_ids = np.full((len(texts), width), tokenizer.pad_token_id, dtype="int64")
        attention_mask = np.zeros((len(texts), width), dtype="float32")
        offsets = np.zeros((len(texts), width, 2), dtype="int64")
        for row, (ids, piece_offsets) in enumerate(encoded):
            input_ids[row, : len(ids)] = ids
            attention_mask[row, : len(ids)] = 1.0
            offsets[row, : len(ids)] = piece_offsets
        strings = self._strings
        wordpieces = WordpieceBatch(
            strings=[[strings[i] for i in row] for row in input_ids.tolist()],
            input_ids=input_ids,
            attention_mask=attention_mask,
            lengths=lengths,
            # One sequence per window: type 0 throughout, as the tokenizer gives.
            token_type_ids=np.zeros_like(input_ids) if self._with_type_ids else None,
        )
        return wordpieces, offsets
