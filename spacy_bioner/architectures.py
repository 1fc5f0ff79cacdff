"""Registered model functions."""

from typing import List, Optional

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Dropout, Linear, Model, chain, concatenate, with_array, zero_init
from thinc.types import Floats2d

from .layers import CRFTransitions


@registry.architectures("spacy_bioner.TokenTagger.v1")
def build_token_tagger(
    tok2vec: Model[List[Doc], List[Floats2d]],
    nO: Optional[int] = None,
    crf: bool = False,
    dropout: float = 0.1,
    features: Optional[Model[List[Doc], List[Floats2d]]] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """Per-token IOB2 tag scores (logits) over a tok2vec layer.

    tok2vec: any layer giving one vector per token: in the shipped configs a
        TransformerListener over a shared `transformer` component.
    nO: the number of tags; set by the component from its labels.
    crf: add linear-chain CRF transition scores, trained with the CRF
        likelihood and used in decoding. Without it, tokens are scored with a
        softmax and decoded with Viterbi over the valid IOB2 transitions.
    dropout: on the token vectors, before the output layer.
    features: optional per-token vectors concatenated to tok2vec's, learned
        by the head itself: e.g. `spacy.MultiHashEmbed.v2` over NORM, PREFIX,
        SUFFIX and SHAPE, the spelling cues (-ine, -mab, digits, capitals) of
        biomedical names, for an encoder that was not trained on them.
    """
    vectors = tok2vec if features is None else concatenate(tok2vec, features)
    # Zero-initialised, like spaCy's tagger: all tags start equally likely.
    # Its input width is inferred at initialisation.
    output_layer = Linear(nO=nO, init_W=zero_init)
    layers = [vectors, with_array(chain(Dropout(dropout), output_layer))]
    crf_layer = CRFTransitions(nO=nO) if crf else None
    if crf_layer is not None:
        layers.append(crf_layer)
    model = chain(*layers)
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("output_layer", output_layer)
    if crf_layer is not None:
        model.set_ref("crf", crf_layer)
    model.name = "token_tagger"
    return model
