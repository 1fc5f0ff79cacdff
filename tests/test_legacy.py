"""Earlier versions of the architectures (legacy.py) build what their
arguments mean in the current versions, found through the registry as a
saved config finds them."""

from typing import Any, Dict

import pytest
from spacy.util import registry
from thinc.api import reduce_mean

from spacy_bioner.layers.transformer import DEFAULT_CPU_WINDOWS_PER_PASS, DEFAULT_WINDOWS_PER_PASS, BioTransformerModel

GET_SPANS = registry.get("span_getters", "spacy-transformers.strided_spans.v1")(window=128, stride=96)
SHIM_SETTINGS = ("precision", "fused_update", "layer_lr_decay")
PASS_SETTINGS = ("max_windows_per_pass", "cpu_windows_per_pass")


def _transformer(model: Any) -> BioTransformerModel:
    return next(layer for layer in model.walk() if isinstance(layer, BioTransformerModel))


@pytest.mark.parametrize(
    "name, args, expected",
    [
        ("spacy_bioner.Transformer.v1", {"mixed_precision": True}, {"precision": "float16"}),
        ("spacy_bioner.Transformer.v2", {"fused_update": True}, {"fused_update": True}),
        ("spacy_bioner.Transformer.v3", {"layer_lr_decay": 0.8}, {"layer_lr_decay": 0.8}),
        ("spacy_bioner.Tok2VecTransformer.v1", {"pooling": reduce_mean(), "mixed_precision": True},
         {"precision": "float16"}),
        ("spacy_bioner.Tok2VecTransformer.v2", {"pooling": reduce_mean(), "fused_update": True},
         {"fused_update": True}),
        ("spacy_bioner.Tok2VecTransformer.v3", {"pooling": reduce_mean(), "precision": "bfloat16"},
         {"precision": "bfloat16"}),
        ("spacy_bioner.Transformer.v4", {"max_windows_per_pass": 64}, {"max_windows_per_pass": 64}),
        ("spacy_bioner.Tok2VecTransformer.v4", {"pooling": reduce_mean(), "max_windows_per_pass": 64},
         {"max_windows_per_pass": 64}),
    ],
)
def test_earlier_transformer_versions_build_the_current_layer(name: str, args: Dict[str, Any],
                                                              expected: Dict[str, Any]) -> None:
    model = registry.architectures.get(name)(name="an-encoder", get_spans=GET_SPANS, **args)
    transformer = _transformer(model)
    shim = transformer.layers[0].shims[0]
    defaults = {"precision": "float32", "fused_update": False, "layer_lr_decay": 1.0,
                "max_windows_per_pass": DEFAULT_WINDOWS_PER_PASS, "cpu_windows_per_pass": DEFAULT_CPU_WINDOWS_PER_PASS}
    settings = {setting: getattr(shim, setting) for setting in SHIM_SETTINGS}
    settings.update((setting, getattr(transformer, setting)) for setting in PASS_SETTINGS)
    assert settings == {**defaults, **expected}
    assert transformer.attrs["name"] == "an-encoder"
    # The same layers as the current version's: a saved pipeline's weights load into either.
    current_args = {"pooling": reduce_mean()} if "pooling" in args else {}
    current = registry.architectures.get(name.rsplit(".", 1)[0] + ".v5")(name="an-encoder", get_spans=GET_SPANS,
                                                                         **current_args)
    assert [layer.name for layer in model.walk()] == [layer.name for layer in current.walk()]
