"""The transformer layer's batch against spacy-transformers': the same split
per document, gradients back through it, windows that fit the encoder, and
the encoder's output computed a few windows at a time in prediction."""

import dataclasses
from pathlib import Path

import numpy
import pytest
import spacy
import torch
from spacy_transformers.data_classes import FullTransformerBatch, TransformerData
from spacy.training import Example
from toy import toy_examples, transformer_pipeline
from transformers.file_utils import ModelOutput

from spacy_bioner.layers import transformer
from spacy_bioner.layers.batch import BioTransformerBatch

TEXTS = [
    "IL-2 gene expression and NF-kappa B activation through CD28 requires reactive oxygen production.",
    "",
    "  two leading spaces,  double  spaces,\n\nnewlines\tand\t\ttabs  ",
    "x",
    "the expression of IL-2 in T cells was induced by p53 . " * 40,
    " ",
    "TNF-α and NF-κB in naïve T cells (n=12; P<0.05) … Ünïcödé café",
]


@pytest.fixture(scope="module")
def nlp(tiny_pipeline: Path):
    return spacy.load(tiny_pipeline)


def assert_same_data(ours: TransformerData, theirs: TransformerData) -> None:
    assert ours.wordpieces.strings == theirs.wordpieces.strings
    assert ours.wordpieces.lengths == theirs.wordpieces.lengths
    for field in ("input_ids", "attention_mask", "token_type_ids"):
        mine, other = getattr(ours.wordpieces, field), getattr(theirs.wordpieces, field)
        assert (mine is None) == (other is None)
        if mine is not None:
            numpy.testing.assert_array_equal(mine, other)
    numpy.testing.assert_array_equal(ours.align.dataXd, theirs.align.dataXd)
    numpy.testing.assert_array_equal(ours.align.lengths, theirs.align.lengths)
    assert list(ours.model_output.keys()) == list(theirs.model_output.keys())
    for key in theirs.model_output.keys():
        mine, other = ours.model_output[key], theirs.model_output[key]
        if isinstance(other, list):
            assert len(mine) == len(other)
        for a, b in zip(mine, other) if isinstance(other, list) else [(mine, other)]:
            numpy.testing.assert_array_equal(a, b)


def test_split_by_doc_as_spacy_transformers(nlp):
    """Documents with one window and many, empty ones, and one passed twice."""
    model = nlp.get_pipe("transformer").model
    docs = [nlp.make_doc(text) for text in TEXTS]
    docs.insert(3, docs[0])
    batch, _ = model(docs, is_train=False)
    assert isinstance(batch, BioTransformerBatch)
    ours, theirs = batch.split_by_doc(), FullTransformerBatch.split_by_doc(batch)
    assert len(ours) == len(theirs) == len(docs)
    for doc, mine, other in zip(docs, ours, theirs):
        assert_same_data(mine, other)
        assert len(mine.align.lengths) == len(doc)
    # Not vacuous: a document of many windows, and the empty one.
    assert max(len(data.wordpieces.input_ids) for data in ours) > 5
    assert sum(len(data.wordpieces.input_ids) == 0 for data in ours) == 1


def test_split_by_doc_splits_every_layers_output(nlp):
    """Outputs with a row per window (the hidden states of every layer) are split too."""
    model = nlp.get_pipe("transformer").model
    docs = [nlp.make_doc(text) for text in TEXTS]
    batch, _ = model(docs, is_train=False)
    hidden = batch.model_output.last_hidden_state
    outputs = ModelOutput(last_hidden_state=hidden, hidden_states=(hidden * 2, hidden * 3))
    batch = dataclasses.replace(batch, model_output=outputs)
    ours, theirs = batch.split_by_doc(), FullTransformerBatch.split_by_doc(batch)
    assert len(ours) == len(theirs) == len(docs)
    for mine, other in zip(ours, theirs):
        assert_same_data(mine, other)
    assert any(len(data.model_output["hidden_states"]) == 2 for data in ours)


def test_passes_of_a_few_windows_join_every_output(tiny_bert):
    """In prediction the encoder takes a few windows at a time, longest
    first, each pass cut to its longest window: every output (the hidden
    states and attentions of each layer too) comes back in the batch's order
    and width, as from one pass."""
    outputs = {"output_hidden_states": True, "output_attentions": True}
    settings = {"components.transformer.model.transformer_config": outputs}
    nlp = transformer_pipeline(tiny_bert, settings=settings)
    nlp.initialize(lambda: toy_examples(nlp, 4))
    model = nlp.get_pipe("transformer").model
    docs = [nlp.make_doc(text) for text in TEXTS]
    model.cpu_windows_per_pass = model.max_windows_per_pass = 1000
    whole, _ = model(docs, is_train=False)
    model.cpu_windows_per_pass = 3
    parts, _ = model(docs, is_train=False)
    lengths = whole.wordpieces.lengths
    assert len(lengths) > 3 * 3 and len(set(lengths)) > 3
    assert list(parts.model_output.keys()) == list(whole.model_output.keys())
    assert set(whole.model_output.keys()) == {"last_hidden_state", "pooler_output", "hidden_states", "attentions"}
    ours, theirs = parts.model_output, whole.model_output
    assert len(ours.hidden_states) == len(theirs.hidden_states) and len(ours.attentions) == len(theirs.attentions)
    numpy.testing.assert_allclose(ours.pooler_output, theirs.pooler_output, atol=1e-5)
    for row, n in enumerate(lengths):
        for mine, other in [(ours.last_hidden_state, theirs.last_hidden_state),
                            *zip(ours.hidden_states, theirs.hidden_states)]:
            assert mine.shape == other.shape
            numpy.testing.assert_allclose(mine[row, :n], other[row, :n], atol=1e-5)
        for mine, other in zip(ours.attentions, theirs.attentions):
            assert mine.shape == other.shape
            numpy.testing.assert_allclose(mine[row, :, :n, :n], other[row, :, :n, :n], atol=1e-5)


@pytest.mark.parametrize("tokenizer_config", [{"use_fast": False}, {"use_fast": False, "padding_side": "left"}])
def test_passes_with_a_slow_tokenizer_read_every_piece(tiny_bert, tokenizer_config):
    """A slow tokenizer's batch counts a window's pieces by their strings, and "[PAD]" in the
    text is the pad token's: a pass cut to that count lost the window's last pieces. Left
    padding puts each window's pieces at the end of its row."""
    settings = {"components.transformer.model.tokenizer_config": tokenizer_config}
    nlp = transformer_pipeline(tiny_bert, settings=settings)
    nlp.initialize(lambda: toy_examples(nlp, 4))
    model = nlp.get_pipe("transformer").model
    texts = ["IL-2 activates T cells [PAD] [PAD] p53", "p53 in T cells", "the IL-2 expression",
             "c-Rel activates monocytes in human T cells .", "IL-2 in T cells"]
    docs = [nlp.make_doc(text) for text in texts]
    model.cpu_windows_per_pass = model.max_windows_per_pass = 1000
    whole, _ = model(docs, is_train=False)
    model.cpu_windows_per_pass = 1
    parts, _ = model(docs, is_train=False)
    mask = torch.as_tensor(whole.wordpieces.attention_mask).bool()
    assert mask[0].sum() > whole.wordpieces.lengths[0]  # the count falls short
    ours, theirs = parts.model_output.last_hidden_state, whole.model_output.last_hidden_state
    for row in range(len(docs)):
        numpy.testing.assert_allclose(ours[row][mask[row]], theirs[row][mask[row]], atol=1e-5)


def test_an_encoder_with_an_output_passes_cannot_join_runs_in_one_pass(tmp_path):
    """XLNet returns `mems`, whose dimensions over the wordpieces are not known: the batch
    goes through in one pass, however many windows it has. Its `max_position_embeddings`
    of -1 means no limit: windows are cut at the tokenizer's."""
    from thinc.api import fix_random_seed
    from toy import make_tiny_roberta
    from transformers import XLNetConfig, XLNetModel

    fix_random_seed(0)
    path = make_tiny_roberta(tmp_path / "xlnet", max_position_embeddings=40)  # its tokenizer
    XLNetModel(XLNetConfig(vocab_size=300, d_model=32, n_layer=2, n_head=2, d_inner=37)).save_pretrained(path)
    nlp = transformer_pipeline(path)
    nlp.initialize(lambda: toy_examples(nlp, 4))
    model = nlp.get_pipe("transformer").model
    text = "the expression of IL-2 in T cells was induced by p53 ."
    docs = [nlp.make_doc(text) for _ in range(9)]
    model.cpu_windows_per_pass = 2
    batch = model.predict(docs)
    assert "mems" in batch.model_output and len(batch.wordpieces.lengths) == len(docs)  # one window each
    model.cpu_windows_per_pass = model.max_windows_per_pass = 1000
    whole = model.predict(docs)
    numpy.testing.assert_array_equal(batch.model_output.last_hidden_state, whole.model_output.last_hidden_state)


@pytest.mark.parametrize("setting", ["max_windows_per_pass", "cpu_windows_per_pass"])
def test_a_pass_of_no_windows_is_refused(setting):
    with pytest.raises(ValueError, match=setting):
        transformer.BioTransformerModel("an-encoder", lambda docs: [], **{setting: 0})


def _encoder_gradients(model, docs) -> dict:
    """The encoder's parameter gradients of 0.5 * |hidden states|^2 over the
    documents' windows, through split_by_doc and unsplit_by_doc as the
    listeners take them (documents without data send no gradient)."""
    batch, backprop = model.begin_update(docs)
    gradients = [[data.model_output.last_hidden_state.copy()] for data in batch.split_by_doc() if data.tensors]
    backprop(batch.unsplit_by_doc(gradients))
    shim = model.layers[0].shims[0]
    grads = {name: p.grad.detach().numpy().copy() for name, p in shim._model.named_parameters() if p.grad is not None}
    shim._model.zero_grad(set_to_none=True)
    return grads


def test_a_document_with_an_empty_window_gets_no_gradient_and_breaks_no_update(tiny_bert):
    """doc_spans gives an empty document one empty window: the encoder still
    runs it, the listeners send nothing for it, and its rows' gradients must
    be zeros, not the next document's (or a shape error)."""
    from thinc.api import Adam, fix_random_seed
    from toy import toy_examples, transformer_pipeline

    from spacy.tokens import Doc

    fix_random_seed(0)
    settings = {
        "components.transformer.model.get_spans": {"@span_getters": "spacy-transformers.doc_spans.v1"},
        # No dropout: the same forward pass whatever else is in the batch.
        "components.transformer.model.transformer_config": {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0},
    }
    nlp = transformer_pipeline(tiny_bert, settings=settings)
    examples = toy_examples(nlp, 6)
    nlp.initialize(lambda: examples)
    model = nlp.get_pipe("transformer").model
    docs = [eg.predicted for eg in examples]
    empty = Doc(nlp.vocab, words=[])
    with_empty = _encoder_gradients(model, docs[:2] + [empty] + docs[2:])
    without = _encoder_gradients(model, docs)
    assert with_empty.keys() == without.keys() and len(without) > 10
    for name in without:
        numpy.testing.assert_allclose(with_empty[name], without[name], rtol=1e-4, atol=1e-6, err_msg=name)
    # And a training step through the pipeline (the listeners' own unsplit).
    batch = examples[:2] + [Example(empty, empty.copy())] + examples[2:]
    losses = nlp.update(batch, sgd=Adam(0.001))
    assert losses["jnlpba"] > 0


def test_windows_fit_an_encoder_whose_positions_start_after_padding(tmp_path):
    """RoBERTa-style embeddings number positions from pad_token_id + 1: 34
    position embeddings take 32 wordpieces. A window cut at 34 would index
    past them (IndexError); every window must be cut to 32, and every token
    keep its wordpieces."""
    from thinc.api import Adam, fix_random_seed
    from toy import make_tiny_roberta, toy_abstracts

    from spacy_bioner.layers.windows import max_positions

    fix_random_seed(0)
    encoder = make_tiny_roberta(tmp_path / "roberta", max_position_embeddings=34)
    # One window per document: the layer alone must cut it to size.
    getter = {"@span_getters": "spacy-transformers.doc_spans.v1"}
    nlp = transformer_pipeline(encoder, settings={"components.transformer.model.get_spans": getter})
    examples = toy_examples(nlp, 6)
    nlp.initialize(lambda: examples)
    model = nlp.get_pipe("transformer").model
    assert model.tokenizer.model_max_length > 10**6 and model.transformer.config.max_position_embeddings == 34
    assert max_positions(model.transformer, model.tokenizer.model_max_length) == 32
    docs = [nlp.make_doc(text) for text in toy_abstracts(3)]
    batch = model.predict(docs)
    assert max(batch.wordpieces.lengths) == 32 and len(batch.wordpieces.lengths) > len(docs)  # cut, and full
    for doc, data in zip(docs, batch.split_by_doc()):
        assert len(data.align.lengths) == len(doc) and data.align.lengths.all()
    assert [doc.text for doc in nlp.pipe(toy_abstracts(3))] == toy_abstracts(3)
    assert nlp.update(examples + [Example(doc, doc.copy()) for doc in docs], sgd=Adam(0.001))["jnlpba"] > 0


@pytest.mark.parametrize("getter", ["spacy-transformers.strided_spans.v1", "spacy_bioner.strided_spans.v1"])
@pytest.mark.parametrize("window, stride, message", [
    (64, 96, "leaves 6,656 of a 20,000-token document's tokens in no window"),
    (1200, 2400, "leaves 9,600 of a 20,000-token document's tokens in no window"),
    (64, 0, "cannot cut a document into windows"),
])
def test_windows_that_leave_tokens_out_are_refused_at_initialize(tiny_bert, getter, window, stride, message):
    """A stride above the window (a window halved for the CPU, its stride left) left every token
    between two windows out: zeros to the heads, in training and prediction, without a word."""
    nlp = transformer_pipeline(tiny_bert, settings={
        "components.transformer.model.get_spans": {"@span_getters": getter, "window": window, "stride": stride}})
    with pytest.raises(ValueError, match=rf"get_spans\]\) {message}"):
        nlp.initialize(lambda: toy_examples(nlp, 2))
