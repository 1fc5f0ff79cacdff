"""A head's token vectors with features beside them: thinc's `concatenate`, for a
tok2vec that listens to a shared transformer.

thinc's `concatenate` adds up what its layers' backprops return. Of the
listeners of one spacy-transformers `Transformer`, only the last returns
something (the docs, once the transformer's own backprop has run); the others
return None, so a head with features that is not the last listener would fail
at its first update. The inputs here are docs, whose gradient nobody reads: this
layer returns what tok2vec's backprop returns, as the head does without
features. Outputs are joined doc by doc, and an empty doc's output, which the
transformer gives as (0, 0), takes the joined width.

Its nodes are those of `concatenate(tok2vec, features)`, in the same order, so
a head saved with thinc's layer loads into this one.
"""

from typing import Callable, List, Optional, Tuple

from spacy.tokens import Doc
from thinc.api import Model
from thinc.types import Floats2d

VectorsModel = Model[List[Doc], List[Floats2d]]


def concatenate_features(tok2vec: VectorsModel, features: VectorsModel) -> VectorsModel:
    """Per-token vectors: tok2vec's, then the features', side by side."""
    return Model(
        f"{tok2vec.name}|{features.name}", _forward, init=_init, dims={"nO": None}, layers=[tok2vec, features]
    )


def _init(model: VectorsModel, X: Optional[List[Doc]] = None, Y: Optional[List[Floats2d]] = None) -> None:
    """Initialize both layers; the width is the sum of theirs, where both know it."""
    for layer in model.layers:
        layer.initialize(X=X)
    if all(layer.has_dim("nO") for layer in model.layers):
        model.set_dim("nO", sum(layer.get_dim("nO") for layer in model.layers))


def _forward(model: VectorsModel, docs: List[Doc], is_train: bool) -> Tuple[List[Floats2d], Callable]:
    """Each doc's tok2vec vectors joined to its features'; the backprop returns tok2vec's
    backprop's result (see the module's docstring)."""
    tok2vec, features = model.layers
    vectors, backprop_tok2vec = tok2vec(docs, is_train)
    extra, backprop_features = features(docs, is_train)
    width = next((v.shape[1] for v in vectors if v.shape[0]), tok2vec.get_dim("nO") if tok2vec.has_dim("nO") else 0)
    outputs = [
        model.ops.xp.hstack([v, e]) if v.shape[0] else model.ops.alloc2f(0, width + e.shape[1])
        for v, e in zip(vectors, extra)
    ]

    def backprop(d_outputs: List[Floats2d]) -> Optional[List[Doc]]:
        backprop_features([model.ops.as_contig(d[:, width:]) for d in d_outputs])
        return backprop_tok2vec([model.ops.as_contig(d[:, :width]) for d in d_outputs])

    return outputs, backprop
