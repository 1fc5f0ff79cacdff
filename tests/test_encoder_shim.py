"""The encoder shim's training-step options: the fused AdamW update against
thinc's per-tensor optimizer, bfloat16 autocast, layer-wise learning-rate
decay, and the settings through saving, `replace_listeners` and v1 configs."""

import re
import warnings

import numpy as np
import pytest
import spacy
import torch
from spacy.tokens import Doc, Span
from spacy.training import Example
from thinc.api import Adam, NumpyOps, RAdam, fix_random_seed
from toy import toy_examples, transformer_pipeline

from spacy_bioner.layers import encoder_shim
from spacy_bioner.layers.encoder_shim import EncoderShim, clip_per_tensor, encoder_depths
from spacy_bioner.layers.transformer import BioTransformerModel


def _settings(**transformer_settings) -> dict:
    return {f"components.transformer.model.{key}": value for key, value in transformer_settings.items()}


def _pipeline(encoder, **transformer_settings) -> spacy.Language:
    """The tiny one-head pipeline with these transformer settings, initialised."""
    fix_random_seed(0)
    nlp = transformer_pipeline(encoder, settings=_settings(**transformer_settings))
    nlp.initialize(lambda: toy_examples(nlp, 20))
    return nlp


def _shim(nlp: spacy.Language) -> EncoderShim:
    [shim] = [shim for node in nlp.get_pipe("transformer").model.walk() for shim in node.shims]
    return shim


def _encoder_weights(nlp: spacy.Language) -> dict:
    return {name: p.detach().numpy().copy() for name, p in _shim(nlp)._model.named_parameters()}


def _train(nlp: spacy.Language, optimizer, steps: int, train_loop: bool = True) -> None:
    """Train on toy examples as `spacy train` does (`nlp.update` without an
    optimizer, then each component's finish_update), or with `nlp.update(sgd=...)`,
    which updates the transformer after its forward pass, before the heads'
    backward pass into it."""
    examples = toy_examples(nlp, 20)
    fix_random_seed(1)  # the same dropout masks in every run
    for _ in range(steps):
        if train_loop:
            nlp.update(examples, sgd=False)
            for _, component in nlp.pipeline:
                component.finish_update(optimizer)
        else:
            nlp.update(examples, sgd=optimizer)
        optimizer.step_schedules()


def test_clip_per_tensor_is_thincs_clip_gradient():
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=shape).astype("float32") * scale for shape, scale in [((5, 3), 1.0), ((7,), 1e-3), ((2, 2), 9.0)]]
    expected = [NumpyOps().clip_gradient(g.copy(), 0.5) for g in grads]
    tensors = [torch.from_numpy(g.copy()) for g in grads]
    clip_per_tensor(tensors, 0.5)
    for got, want in zip(tensors, expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    # The small gradient is below the threshold and left alone.
    np.testing.assert_array_equal(tensors[1].numpy(), grads[1])


@pytest.mark.parametrize("grad_clip, train_loop", [(0.0, True), (0.05, True), (0.05, False)])
def test_fused_update_matches_thincs_per_tensor_adam(tiny_bert, grad_clip, train_loop):
    """Same pipeline, seed and batches: the encoder's weights after 6 steps of
    the fused AdamW step are thinc's Adam's (with decoupled weight decay, the
    learning-rate schedule, and per-tensor clipping where it binds), both in
    spaCy's training loop and through `nlp.update(sgd=...)`."""
    runs = {}
    for fused in (False, True):
        nlp = _pipeline(tiny_bert, fused_update=fused)
        schedule = [0.002, 0.004, 0.006, 0.004, 0.002, 0.001]
        optimizer = Adam(iter(schedule), L2=0.01, L2_is_weight_decay=True, grad_clip=grad_clip, use_averages=False)
        _train(nlp, optimizer, steps=len(schedule), train_loop=train_loop)
        runs[fused] = nlp
    initial = _encoder_weights(_pipeline(tiny_bert))
    thinc_weights, fused_weights = _encoder_weights(runs[False]), _encoder_weights(runs[True])
    assert thinc_weights.keys() == fused_weights.keys() == initial.keys()
    moved = max(np.abs(thinc_weights[k] - initial[k]).max() for k in initial)
    assert moved > 1e-3  # the steps did train the encoder
    for name in initial:
        np.testing.assert_allclose(fused_weights[name], thinc_weights[name], atol=1e-3 * moved, err_msg=name)  # float32 rounding
    # The heads are thinc layers, updated by the thinc optimizer either way.
    for a, b in zip(runs[False].get_pipe("jnlpba").model.walk(), runs[True].get_pipe("jnlpba").model.walk()):
        for param in a.param_names:
            if a.has_param(param):
                np.testing.assert_allclose(b.get_param(param), a.get_param(param), atol=1e-4)


def test_encoder_depths_follow_the_layers(tiny_bert):
    names = [name for name, _ in _shim(_pipeline(tiny_bert))._model.named_parameters()]
    depths = encoder_depths(names)
    assert {depths[name] for name in names if name.startswith("embeddings.")} == {0}
    for layer in (0, 1):
        assert {depths[name] for name in names if name.startswith(f"encoder.layer.{layer}.")} == {layer + 1}
    assert {depths[name] for name in names if name.startswith("pooler.")} == {2}
    assert encoder_depths(["model.embed_tokens.weight", "model.layers.10.mlp.weight", "model.norm.weight"]) == {
        "model.embed_tokens.weight": 0,
        "model.layers.10.mlp.weight": 11,
        "model.norm.weight": 11,
    }


def test_layer_lr_decay_on_an_encoder_without_named_layers_is_refused():
    """GPT-2's parameters (h.0.attn..., wte) match no layer: every depth was 0, and the decay changed
    nothing, without a word."""
    from spacy_transformers.data_classes import HFObjects

    shim = EncoderShim(HFObjects(None, None, None, {}, {}), layer_lr_decay=0.5)
    with pytest.raises(ValueError, match="layer_lr_decay 0.5: no parameter of the encoder is named as a layer's"):
        shim.lr_scales(["wte.weight", "h.0.attn.c_attn.weight", "h.1.attn.c_attn.weight", "ln_f.weight"])
    assert shim.lr_scales(["embeddings.word_embeddings.weight", "encoder.layer.0.output.dense.weight"]) == {
        "embeddings.word_embeddings.weight": 0.5, "encoder.layer.0.output.dense.weight": 1.0}


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("decay", [1.0, 0.5])
def test_layer_lr_decay_scales_each_layers_step(tiny_bert, fused, decay):
    """Adam moves the weights with the largest gradients by the same multiple
    of their learning rate whatever the gradient's size: the encoder's largest
    steps are lr * decay ** (layers above), the embeddings' lr * decay ** 2
    in the 2-layer encoder. (Two steps: the heads start at zero, so the
    first sends the encoder no gradient.)"""
    nlp = _pipeline(tiny_bert, fused_update=fused, layer_lr_decay=decay)
    before = _encoder_weights(nlp)
    _train(nlp, Adam(1e-3, L2=0.0, grad_clip=0.0, use_averages=False), steps=2)
    after = _encoder_weights(nlp)
    depths = encoder_depths(list(before))
    steps = {name: np.abs(after[name] - before[name]).max() for name in before}
    assert {steps[name] for name in before if name.startswith("pooler.")} == {0}  # no gradient reaches it
    # Queries and keys of the random encoder's near-uniform attention get
    # gradients near Adam's eps, and smaller steps.
    compared = [name for name in before if not re.search(r"^pooler\.|\.(query|key)\.", name)]
    multiples = [steps[name] / decay ** (2 - depths[name]) for name in compared]
    assert len(compared) == 29 and min(multiples) > 1e-4
    np.testing.assert_allclose(multiples, max(multiples), rtol=0.01)


def test_layer_lr_decay_outside_zero_to_one_is_refused(tiny_bert):
    with pytest.raises(ValueError, match="layer_lr_decay"):
        _pipeline(tiny_bert, layer_lr_decay=1.5)


@pytest.mark.parametrize(
    "optimizer, refused",
    [
        (RAdam(0.001, use_averages=False), "RAdam"),
        (Adam(0.001, use_averages=True), "use_averages"),
        (Adam(0.001, L2=0.01, L2_is_weight_decay=False, use_averages=False), "L2_is_weight_decay"),
    ],
)
def test_fused_update_refuses_what_adamw_cannot_do(tiny_bert, optimizer, refused):
    nlp = _pipeline(tiny_bert, fused_update=True)
    with pytest.raises(ValueError, match=refused):
        _train(nlp, optimizer, steps=1)


def test_parameter_averages_reach_the_encoder(tiny_bert):
    """With `use_averages = true`, `nlp.use_params(optimizer.averages)` (spaCy's
    evaluation and saving) puts the optimizer's averages into the encoder,
    not only into the heads, and restores the trained weights afterwards."""
    nlp = _pipeline(tiny_bert)
    optimizer = Adam(0.01, use_averages=True)
    _train(nlp, optimizer, steps=4)
    shim = _shim(nlp)
    trained = _encoder_weights(nlp)
    # Parameters that never had a gradient (the unused pooler) have no averages.
    averaged = {name: optimizer.averages[(shim.id, name)] for name in trained if (shim.id, name) in optimizer.averages}
    assert "embeddings.word_embeddings.weight" in averaged
    assert max(np.abs(averaged[k] - trained[k]).max() for k in averaged) > 1e-4
    docs = [eg.predicted for eg in toy_examples(nlp, 4)]
    hidden = lambda: nlp.get_pipe("transformer").model.predict(docs).model_output.last_hidden_state.numpy()
    before = hidden()
    with nlp.use_params(optimizer.averages):
        for name, weights in _encoder_weights(nlp).items():
            np.testing.assert_array_equal(weights, averaged.get(name, trained[name]), err_msg=name)
        assert np.abs(hidden() - before).max() > 1e-5
    for name, weights in _encoder_weights(nlp).items():
        np.testing.assert_array_equal(weights, trained[name], err_msg=name)
    np.testing.assert_array_equal(hidden(), before)


def test_bfloat16_autocast_trains_and_hands_float32_to_the_heads(tiny_bert, monkeypatch):
    monkeypatch.setattr(encoder_shim, "_cpu_has_bfloat16", lambda: True)  # as on a CPU with AVX512-BF16
    nlp = _pipeline(tiny_bert, precision="bfloat16")
    reference = _pipeline(tiny_bert)
    before = _encoder_weights(nlp)
    _train(nlp, Adam(0.005, use_averages=False), steps=3)
    assert any(np.abs(w - before[k]).max() > 0 for k, w in _encoder_weights(nlp).items())
    docs = [eg.predicted for eg in toy_examples(nlp, 4)]
    # Same weights, two precisions: float32 out of both, close to each other.
    _shim(reference)._model.load_state_dict(_shim(nlp)._model.state_dict())
    ours = nlp.get_pipe("transformer").model.predict(docs).model_output.last_hidden_state
    exact = reference.get_pipe("transformer").model.predict(docs).model_output.last_hidden_state
    assert ours.dtype == exact.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), exact.numpy(), atol=0.1)
    assert (ours - exact).abs().max() > 0  # the autocast did run in bfloat16


def _assert_predicts_as_float32_once_warned(nlp: spacy.Language, tiny_bert) -> None:
    """`nlp`'s encoder predicts what the same weights predict in float32, with no second warning."""
    reference = _pipeline(tiny_bert)
    _shim(reference)._model.load_state_dict(_shim(nlp)._model.state_dict())
    docs = [eg.predicted for eg in toy_examples(nlp, 4)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once
        ours = nlp.get_pipe("transformer").model.predict(docs).model_output.last_hidden_state
    exact = reference.get_pipe("transformer").model.predict(docs).model_output.last_hidden_state
    torch.testing.assert_close(ours, exact, rtol=0, atol=0)


def test_bfloat16_without_bfloat16_arithmetic_runs_in_float32_and_says_so(tiny_bert, monkeypatch):
    """A pipeline trained in bfloat16 on a GPU, loaded on a CPU that would only emulate it."""
    monkeypatch.setattr(encoder_shim, "_cpu_has_bfloat16", lambda: False)
    with pytest.warns(UserWarning, match="no bfloat16 arithmetic.*runs in float32"):
        nlp = _pipeline(tiny_bert, precision="bfloat16")  # initialising runs the encoder
    _assert_predicts_as_float32_once_warned(nlp, tiny_bert)


def test_float16_off_cuda_predicts_in_float32_and_refuses_to_train(tiny_bert):
    """A pipeline trained in float16 on a GPU predicts on a CPU in float32, said once (torch said that
    CUDA is not available); training there failed in thinc's gradient scaler, naming no setting."""
    with pytest.warns(UserWarning, match=r"precision 'float16' on the encoder's device \(cpu\).*runs in float32"):
        nlp = _pipeline(tiny_bert, precision="float16")  # initialising runs the encoder
    _assert_predicts_as_float32_once_warned(nlp, tiny_bert)
    with pytest.raises(ValueError, match=r"precision 'float16' trains on a CUDA GPU only .* 'bfloat16' or 'float32'"):
        nlp.update(toy_examples(nlp, 2))


@pytest.mark.filterwarnings("ignore:precision 'bfloat16'")  # on a CPU without bfloat16 arithmetic
def test_settings_survive_saving_and_replacing_listeners(tiny_bert, tmp_path):
    nlp = _pipeline(tiny_bert, precision="bfloat16", fused_update=True, layer_lr_decay=0.8, max_windows_per_pass=5,
                    cpu_windows_per_pass=3)
    _train(nlp, Adam(0.005, use_averages=False), steps=1)
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    settings = lambda shim: (shim.precision, shim.fused_update, shim.layer_lr_decay)
    assert settings(_shim(loaded)) == ("bfloat16", True, 0.8)
    passes = lambda layer: (layer.max_windows_per_pass, layer.cpu_windows_per_pass, layer.windows_per_pass())
    assert passes(loaded.get_pipe("transformer").model) == (5, 3, 3)
    # Changed where it runs: the copy keeps them.
    loaded.get_pipe("transformer").model.max_windows_per_pass = 7
    loaded.get_pipe("transformer").model.cpu_windows_per_pass = 9
    loaded.replace_listeners("transformer", "jnlpba", ["model.tok2vec"])
    architecture = loaded.config["components"]["jnlpba"]["model"]["tok2vec"]["@architectures"]
    assert architecture == "spacy_bioner.Tok2VecTransformer.v5"
    [copied] = [shim for node in loaded.get_pipe("jnlpba").model.walk() for shim in node.shims]
    assert settings(copied) == ("bfloat16", True, 0.8)
    [layer] = [node for node in loaded.get_pipe("jnlpba").model.walk() if hasattr(node, "max_windows_per_pass")]
    assert passes(layer) == (7, 9, 7)  # on the CPU, at most max_windows_per_pass


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
@pytest.mark.filterwarnings("ignore:precision 'bfloat16'")  # on a CPU without bfloat16 arithmetic
def test_prediction_runs_in_evaluation_mode_and_training_in_training_mode(tiny_bert, precision):
    """Prediction leaves the encoder in evaluation mode (switching walks every
    module); a training pass after it still has its dropout."""
    nlp = _pipeline(tiny_bert, precision=precision)
    model, encoder = nlp.get_pipe("transformer").model, _shim(nlp)._model
    assert encoder.config.hidden_dropout_prob > 0
    docs = [eg.predicted for eg in toy_examples(nlp, 4)]
    predicted = model.predict(docs).model_output.last_hidden_state
    assert not encoder.training
    trained, _ = model.begin_update(docs)
    assert encoder.training
    assert not torch.allclose(trained.model_output.last_hidden_state, predicted)
    torch.testing.assert_close(model.predict(docs).model_output.last_hidden_state, predicted, rtol=0, atol=0)
    assert not encoder.training


def test_a_copied_encoder_keeps_its_optimizer_state_apart(tiny_bert):
    """thinc's optimizer keys its state by (shim id, name): the copy that
    replace_listeners makes must not share the original's moments or averages."""
    nlp = transformer_pipeline(tiny_bert, heads=("jnlpba", "bc5cdr"))
    examples = toy_examples(nlp, 4, spans_key="jnlpba") + toy_examples(nlp, 4, spans_key="bc5cdr", seed=1)
    nlp.initialize(lambda: examples)
    nlp.replace_listeners("transformer", "jnlpba", ["model.tok2vec"])  # bc5cdr still listens
    shims = [shim for pipe in ("transformer", "jnlpba") for node in nlp.get_pipe(pipe).model.walk()
             for shim in node.shims]
    assert len(shims) == 2 and shims[0].id != shims[1].id and shims[0]._model is not shims[1]._model
    optimizer = Adam(0.001, use_averages=True)
    for _ in range(3):
        nlp.update(examples, sgd=optimizer)
    name = "embeddings.word_embeddings.weight"
    # The copy's own count (3 updates); the original's steps are counted apart from it.
    assert optimizer.nr_update[(shims[1].id, name)] == 3 and (shims[0].id, name) in optimizer.nr_update
    weights = [dict(shim._model.named_parameters())[name] for shim in shims]
    assert not torch.equal(weights[0], weights[1])


def test_a_head_that_holds_the_encoder_copies_whole(tiny_bert):
    """A copy of a head's model after replace_listeners (thinc copies nested layers with
    `_copy`) holds an encoder of this package's class, with its own shim, and predicts as
    the original does."""
    nlp = transformer_pipeline(tiny_bert)
    examples = toy_examples(nlp, 4)
    nlp.initialize(lambda: examples)
    nlp.replace_listeners("transformer", "jnlpba", ["model.tok2vec"])
    model = nlp.get_pipe("jnlpba").model
    copied = model.copy()
    encoders = [node for m in (model, copied) for node in m.walk() if isinstance(node, BioTransformerModel)]
    assert len(encoders) == 2 and encoders[0].layers[0].shims[0].id != encoders[1].layers[0].shims[0].id
    docs = [eg.predicted for eg in examples]
    expected, got = model.predict(docs), copied.predict(docs)
    for a, b in zip(expected.emissions, got.emissions):
        np.testing.assert_allclose(b, a, rtol=1e-5)


@pytest.mark.parametrize(
    "version, settings, expected",
    [
        ("v1", {"mixed_precision": True}, ("float16", False, 1.0)),
        ("v2", {"precision": "bfloat16", "fused_update": True}, ("bfloat16", True, 1.0)),
        ("v3", {"precision": "bfloat16", "layer_lr_decay": 0.8}, ("bfloat16", False, 0.8)),
        ("v4", {"precision": "bfloat16", "fused_update": True, "layer_lr_decay": 0.8}, ("bfloat16", True, 0.8)),
    ],
)
def test_earlier_configs_still_build(tiny_bert, version, settings, expected):
    architecture = {"@architectures": f"spacy_bioner.Transformer.{version}"}
    nlp = transformer_pipeline(tiny_bert, settings=_settings(**architecture, **settings))
    shim = _shim(nlp)
    assert (shim.precision, shim.fused_update, shim.layer_lr_decay) == expected
    transformer = nlp.get_pipe("transformer").model
    assert (transformer.max_windows_per_pass, transformer.cpu_windows_per_pass) == (128, 8)


def test_an_unknown_precision_is_refused(tiny_bert):
    with pytest.raises(ValueError, match="bfloat16"):
        transformer_pipeline(tiny_bert, settings=_settings(precision="fp8"))


def test_the_layer_has_every_attr_of_spacy_transformers_model():
    """BioTransformerModel builds itself as TransformerModel.__init__ would, with its own
    forward and init: an attr a new spacy-transformers adds, which its functions
    would read, must not be missing here."""
    from spacy_transformers.layers import TransformerModel
    from spacy_transformers.span_getters import get_doc_spans

    ours = BioTransformerModel("encoder", get_doc_spans)
    theirs = TransformerModel("encoder", get_doc_spans)
    assert set(ours.attrs) == set(theirs.attrs) | {"fallback"}
    assert set(ours.layers[0].attrs) == set(theirs.layers[0].attrs)
    assert ours.dim_names == theirs.dim_names and ours.layers[0].dim_names == theirs.layers[0].dim_names


def test_loading_writes_into_no_config_the_caller_holds(tiny_bert):
    """spacy-transformers writes into the transformer config it loads with: a dict
    the caller passed (or a default every model shares) must stay as it was."""
    from spacy_transformers.span_getters import get_doc_spans

    shared = {"output_hidden_states": False}
    model = BioTransformerModel(str(tiny_bert), get_doc_spans, transformer_config=shared)
    model.initialize()
    assert model.attrs["has_transformer"]
    assert shared == {"output_hidden_states": False}


def test_a_head_with_its_own_transformer_initialises_on_a_document_longer_than_the_encoder(tiny_bert):
    """A head whose tok2vec is its own transformer (the config replace_listeners
    writes, trained again from scratch) initialises on the training documents:
    spacy-transformers' init encoded them as one window each, past the encoder's
    512 positions where a document is longer, instead of the layer's windows."""
    nlp = transformer_pipeline(tiny_bert)
    nlp.initialize(lambda: toy_examples(nlp, 4))
    nlp.replace_listeners("transformer", "jnlpba", ["model.tok2vec"])
    config = nlp.config.copy()
    config["nlp"]["pipeline"] = ["jnlpba"]
    del config["components"]["transformer"]
    retrained = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    long_doc = Doc(retrained.vocab, words=["-" * 600, "IL-2"], spaces=[True, False])
    reference = long_doc.copy()
    reference.spans["jnlpba"] = [Span(reference, 1, 2, "protein")]
    examples = [Example(long_doc, reference)] + toy_examples(retrained, 4)
    retrained.initialize(lambda: examples)
    retrained.update(examples, sgd=Adam(0.001))
    assert "jnlpba" in retrained(long_doc.text).spans  # encoded through the layer's windows
