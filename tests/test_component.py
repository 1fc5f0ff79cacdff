import copy
import itertools
import json
import warnings

import numpy as np
import pytest
import spacy
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example
from spacy.util import registry
from thinc.config import ConfigValidationError
from thinc.api import Adam, Optimizer, fix_random_seed
from toy import SMALL_TOK2VEC, toy_docs, toy_examples, train, train_two_heads, transformer_pipeline

from spacy_bioner.annotation import head_ents, head_group, is_head_group, spans_with_scores
from spacy_bioner.losses import WEIGHTING_SCHEMES
from spacy_bioner.messages import first_line
from spacy_bioner.pipeline_component import NO_GOLD_WARNING_AFTER, BioNER
from spacy_bioner.tags import is_well_formed, make_tags, tags_to_spans

LOSSES = {False: "spacy_bioner.ClassWeightedCrossentropy.v1", True: "spacy_bioner.CRFLoss.v1"}


def make_nlp(scheme="none", crf=False, spans_key="jnlpba", name="jnlpba", tag_scheme="IOB2", loss=None):
    fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "bio_ner",
        name=name,
        config={
            "spans_key": spans_key,
            "tag_scheme": tag_scheme,
            "model": {"crf": crf, "tok2vec": SMALL_TOK2VEC},
            "loss": {"@losses": loss or LOSSES[crf], "scheme": scheme},
        },
    )
    return nlp


def params_of(model):
    """A copy of every parameter of a thinc model, by (node name, node id, parameter name)."""
    return {
        (node.name, node.id, name): node.get_param(name).copy()
        for node in model.walk()
        for name in node.param_names
        if node.has_param(name)
    }


@pytest.mark.parametrize("crf", [False, True], ids=["softmax", "crf"])
@pytest.mark.parametrize("scheme", WEIGHTING_SCHEMES)
def test_toy_corpus_is_learned_perfectly(scheme, crf):
    nlp = make_nlp(scheme, crf)
    examples = toy_examples(nlp, 40)
    train(nlp, examples, steps=60)
    scores = nlp.evaluate(examples)
    assert scores["ents_f"] == 1.0
    assert scores["spans_jnlpba_f"] == 1.0
    assert nlp.get_pipe("jnlpba").labels == ("cell_type", "protein")


def test_the_cost_augmented_crf_loss_learns_saves_and_loads(tmp_path):
    nlp = make_nlp("inverse_frequency", crf=True, loss="spacy_bioner.CostAugmentedCRFLoss.v1")
    examples = toy_examples(nlp, 40)
    train(nlp, examples, steps=60)
    assert nlp.evaluate(examples)["spans_jnlpba_f"] == 1.0
    nlp.to_disk(tmp_path)
    loaded = spacy.load(tmp_path)
    assert type(loaded.get_pipe("jnlpba").loss).__name__ == "CostAugmentedCRFLoss"
    text = examples[0].reference.text
    assert [(e.text, e.label_) for e in loaded(text).ents] == [(e.text, e.label_) for e in nlp(text).ents]


SPELLING = {"@architectures": "spacy.MultiHashEmbed.v2", "width": 16, "attrs": ["NORM", "SHAPE"],
            "rows": [500, 50], "include_static_vectors": False}


def test_features_are_concatenated_and_learned_by_the_head():
    """A tok2vec that gives every token the same vector cannot tell entities
    apart; spelling features concatenated to it can (all but the ambiguous
    "B" of "NF-kappa B" and "B lymphocytes", which needs context)."""
    blind = {"@architectures": "spacy.MultiHashEmbed.v2", "width": 8, "attrs": ["IS_SPACE"], "rows": [10],
             "include_static_vectors": False}
    f_scores = {}
    for name, features in (("blind", None), ("with features", SPELLING)):
        fix_random_seed(0)
        nlp = spacy.blank("en")
        nlp.add_pipe("bio_ner", name="jnlpba", config={"spans_key": "jnlpba", "model": {"tok2vec": blind, "features": features}})
        examples = toy_examples(nlp, 40)
        train(nlp, examples, steps=60)
        f_scores[name] = nlp.evaluate(examples)["ents_f"]
    assert f_scores["blind"] < 0.5
    assert f_scores["with features"] > 0.75
    assert nlp.get_pipe("jnlpba").model.get_ref("output_layer").get_dim("nI") == 8 + 16


@pytest.mark.slow
def test_features_beside_every_listener_of_a_shared_transformer(tiny_bert, tmp_path):
    """Only the transformer's last listener returns the docs from its backprop; the others
    return None, which thinc's `concatenate` failed to add up."""
    settings = {f"components.{key}.model.features": SPELLING for key in ("jnlpba", "bc5cdr")}
    nlp = train_two_heads(transformer_pipeline(tiny_bert, heads=("jnlpba", "bc5cdr"), settings=settings), steps=3)
    assert list(nlp.get_pipe("transformer").listener_map) == ["jnlpba", "bc5cdr"]
    for key in ("jnlpba", "bc5cdr"):
        assert nlp.get_pipe(key).model.get_ref("output_layer").get_dim("nI") == 32 + 16
    for key in ("jnlpba", "bc5cdr"):  # 3 steps find nothing: random outputs, so that the reload has spans to agree on
        randomize_output_layer(nlp.get_pipe(key))
    texts = ["", "IL-2 activates NF-kappa B in T cells .", " "]  # empty docs: the transformer gives (0, 0)
    docs = list(nlp.pipe(texts))
    assert len(docs[0]) == 0 and all(len(docs[1].spans[key]) for key in ("jnlpba", "bc5cdr"))
    nlp.to_disk(tmp_path / "model")
    again = list(spacy.load(tmp_path / "model").pipe(texts))
    for key in ("jnlpba", "bc5cdr"):
        assert [[(s.start, s.end, s.label_) for s in doc.spans[key]] for doc in again] == [
            [(s.start, s.end, s.label_) for s in doc.spans[key]] for doc in docs]
        for doc, before in zip(again, docs):
            np.testing.assert_allclose(doc.spans[key].attrs["scores"], before.spans[key].attrs["scores"], rtol=1e-6)


def test_a_head_saved_with_thincs_concatenate_loads():
    """The features layer has the nodes of `concatenate(tok2vec, features)`, in order."""
    from thinc.api import concatenate

    from spacy_bioner.layers.features import concatenate_features

    docs = [spacy.blank("en")(text) for text in ("IL-2 binds", "", "the IL-2 receptor alpha")]

    def built(join):
        tok2vec, features = (registry.resolve({"x": config})["x"] for config in (SMALL_TOK2VEC, SPELLING))
        return join(tok2vec, features)

    fix_random_seed(0)
    saved = built(concatenate)
    saved.initialize(X=docs)
    loaded = built(concatenate_features).from_bytes(saved.to_bytes())
    outputs = loaded.predict(docs)
    assert [y.shape for y in outputs] == [(2, 64 + 16), (0, 64 + 16), (4, 64 + 16)]
    for ours, theirs in zip(outputs, saved.predict(docs)):
        np.testing.assert_array_equal(ours, theirs)


def randomize_output_layer(head: BioNER) -> None:
    """Random weights for the output layer, which starts at zero (every tag equally likely)."""
    output = head.model.get_ref("output_layer")
    rng = np.random.default_rng(0)
    output.set_param("W", rng.normal(0.0, 1.0, output.get_param("W").shape).astype("f"))
    output.set_param("b", rng.normal(0.0, 1.0, output.get_param("b").shape).astype("f"))


@pytest.mark.parametrize("crf", [False, True], ids=["softmax", "crf"])
def test_predictions_are_well_formed_and_scored_even_untrained(crf):
    """Random emissions, whose per-token argmax is ill formed (an I- after an O),
    decode to well-formed tags; every span is scored with the mean confidence
    of its tokens, a probability."""
    nlp = make_nlp(crf=crf)
    examples = toy_examples(nlp, 10)
    nlp.initialize(lambda: examples)
    ner = nlp.get_pipe("jnlpba")
    assert ner.cfg["class_weights"] is not None
    randomize_output_layer(ner)
    docs = [nlp.make_doc(eg.reference.text) for eg in examples]
    emissions = ner.model.predict(docs).emissions
    argmax = [[ner.tags[i] for i in e.argmax(axis=1)] for e in emissions]
    assert not all(is_well_formed(tags) for tags in argmax)  # the decoder has something to repair
    predictions = ner.predict(docs)
    ner.set_annotations(docs, predictions)
    n_spans = 0
    for doc, (path, confidence) in zip(docs, predictions):
        tags = [ner.tags[i] for i in path]
        assert is_well_formed(tags), tags
        assert ((confidence >= 0.0) & (confidence <= 1.0)).all()
        group = doc.spans["jnlpba"]
        assert [(s.start, s.end, s.label_) for s in group] == tags_to_spans(tags)
        assert group.attrs["scores"] == pytest.approx([float(confidence[s.start : s.end].mean()) for s in group])
        n_spans += len(group)
    assert n_spans > 0


@pytest.mark.parametrize("crf", [False, True], ids=["softmax", "crf"])
def test_entity_scores_are_exact_entity_probabilities_as_configured(tmp_path, crf):
    """span_scores = "segment": the same entities, each scored with the probability
    of exactly that entity, which no token's own probability can fall below."""
    nlp = make_nlp(crf=crf)
    examples = toy_examples(nlp, 10)
    nlp.initialize(lambda: examples)
    head = nlp.get_pipe("jnlpba")
    assert head.span_scores == "token_mean"  # unless configured: older pipelines score as they did
    randomize_output_layer(head)
    texts = [eg.reference.text for eg in examples]

    def scored(pipeline):
        return [(s.start, s.end, s.label_, score) for doc in pipeline.pipe(texts) for s, score in spans_with_scores(doc, "jnlpba")]

    token_mean = scored(nlp)
    nlp.to_disk(tmp_path / "nlp")
    loaded = spacy.load(tmp_path / "nlp", config={"components": {"jnlpba": {"span_scores": "segment"}}})
    head.span_scores = "segment"  # at runtime, as in a loaded pipeline
    for segment in (scored(nlp), scored(loaded)):
        assert [entity[:3] for entity in segment] == [entity[:3] for entity in token_mean] and segment
        assert all(0 <= new[3] <= old[3] * (1 + 1e-6) for new, old in zip(segment, token_mean))
        assert any(new[3] < old[3] - 1e-3 for new, old in zip(segment, token_mean) if old[1] - old[0] > 1)
    with pytest.raises(ValueError, match=r"Unknown span_scores 'mean'"):
        BioNER(nlp.vocab, head.model, loss=head.loss, span_scores="mean")


def test_the_decoders_memory_bound_is_a_config_setting(tmp_path):
    """max_decode_cells bounds the cells the decoder holds at once: a loaded pipeline takes
    another through its config, and decodes in smaller groups to the same entities."""
    nlp = make_nlp(crf=True)
    examples = toy_examples(nlp, 10)
    nlp.initialize(lambda: examples)
    randomize_output_layer(nlp.get_pipe("jnlpba"))
    texts = [eg.reference.text for eg in examples]
    nlp.to_disk(tmp_path / "nlp")
    loaded = spacy.load(tmp_path / "nlp", config={"components": {"jnlpba": {"max_decode_cells": 1}}})
    assert loaded.get_pipe("jnlpba").decoder.max_cells == 1  # one document at a time
    entities = lambda pipeline: [[(e.start, e.end, e.label_) for e in doc.ents] for doc in pipeline.pipe(texts)]
    assert entities(loaded) == entities(nlp) and any(entities(nlp))
    with pytest.raises(ValueError, match=r"max_decode_cells is a positive number of cells, not 0"):
        spacy.load(tmp_path / "nlp", config={"components": {"jnlpba": {"max_decode_cells": 0}}})


@pytest.mark.parametrize("crf", [False, True], ids=["softmax", "crf"])
def test_serialization_round_trip(tmp_path, crf):
    nlp = make_nlp("welt", crf)
    examples = toy_examples(nlp, 30)
    train(nlp, examples, steps=5)
    texts = [eg.reference.text for eg in examples]
    before = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]
    weights = nlp.get_pipe("jnlpba").loss.class_weights.copy()
    nlp.to_disk(tmp_path / "nlp")
    for loaded in (spacy.load(tmp_path / "nlp"), make_nlp("welt", crf).from_bytes(nlp.to_bytes())):
        ner = loaded.get_pipe("jnlpba")
        assert np.array_equal(ner.loss.class_weights, weights)
        assert np.array_equal(np.asarray(ner.cfg["class_weights"], dtype="f"), weights)
        after = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in loaded.pipe(texts)]
        assert after == before


@pytest.mark.parametrize("crf", [False, True], ids=["softmax", "crf"])
def test_a_biluo_head_learns_saves_and_loads_in_its_scheme(tmp_path, crf):
    nlp = make_nlp(crf=crf, tag_scheme="BILUO")
    examples = toy_examples(nlp, 40)
    train(nlp, examples, steps=60)
    head = nlp.get_pipe("jnlpba")
    assert head.tags == ["O"] + [f"{p}-{label}" for p in "BILU" for label in ("cell_type", "protein")]
    gold = [[head.tags[t] for t in head.gold_tags(eg)] for eg in examples]
    assert any(tag.startswith("U-") for tags in gold for tag in tags)  # one-token entities
    assert all(tags_to_spans(tags) == [(e.start, e.end, e.label_) for e in eg.reference.ents]
               for tags, eg in zip(gold, examples))
    assert nlp.evaluate(examples)["ents_f"] == 1.0
    texts = [eg.reference.text for eg in examples]
    before = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]
    nlp.to_disk(tmp_path / "nlp")
    loaded = spacy.load(tmp_path / "nlp")
    assert loaded.get_pipe("jnlpba").tag_scheme == "BILUO"
    assert [[(e.start, e.end, e.label_) for e in doc.ents] for doc in loaded.pipe(texts)] == before


@pytest.mark.parametrize(
    "config,setting,choices",
    [
        ({"tag_scheme": "BIOES"}, "tag_scheme", "'IOB2', 'BILUO'"),
        ({"span_scores": "segments"}, "span_scores", "'segment', 'token_mean'"),
        ({"loss": {"@losses": "spacy_bioner.CRFLoss.v1", "scheme": "inverse_freq"}}, "loss -> scheme",
         "'none', 'inverse_frequency', 'welt', 'ens'"),
        ({"loss": {"@losses": "spacy_bioner.CRFLoss.v1", "granularity": "tags"}}, "loss -> granularity", "'bio', 'tag'"),
        ({"model": {"@architectures": "spacy_bioner.TokenTagger.v3", "tok2vec": SMALL_TOK2VEC, "recursion": "fast"}},
         "model -> recursion", "'auto', 'sequential', 'parallel'"),
    ],
)
def test_a_setting_out_of_its_choices_is_a_config_error_that_names_it(config, setting, choices):
    """As spaCy's own settings are checked: the message names the setting and lists its values
    (a ValueError from inside the factory named neither the head nor the setting)."""
    with pytest.raises(ConfigValidationError, match=rf"{setting}\s.*is not typing.Literal\[{choices}\]"):
        spacy.blank("en").add_pipe("bio_ner", name="bc5cdr", config=config)


def test_a_config_error_in_one_line_names_its_section_setting_and_values():
    """The commands print an error's first line: a config error's first line is a title alone."""
    with pytest.raises(ConfigValidationError) as scheme:
        spacy.blank("en").add_pipe("bio_ner", config={"tag_scheme": "BIOES"})
    assert first_line(scheme.value) == ("Config error for 'bio_ner': bio_ner -> tag_scheme at root: 'BIOES' is not "
                                        "typing.Literal['IOB2', 'BILUO']")
    nlp = make_nlp()
    nlp.config["initialize"]["components"] = {"jnlpba": {"labels": 5}}
    with pytest.raises(ConfigValidationError) as labels:
        nlp.initialize(lambda: toy_examples(nlp, 2))
    assert first_line(labels.value).startswith("Error validating initialization settings in [initialize.components]: "
                                               "jnlpba -> labels ")


def test_head_does_not_learn_from_documents_without_its_annotation():
    """The BC5CDR head must learn nothing from JNLPBA documents, and vice versa."""
    nlp = make_nlp(spans_key="jnlpba", name="jnlpba")
    nlp.add_pipe(
        "bio_ner", name="bc5cdr", config={"spans_key": "bc5cdr", "model": {"tok2vec": SMALL_TOK2VEC}}
    )
    jnlpba = toy_examples(nlp, 20, spans_key="jnlpba")
    bc5cdr = []
    for words, label in [(["aspirin", "causes", "nausea"], None)] * 10:
        ref = Doc(nlp.vocab, words=words)
        spans = [Span(ref, 0, 1, "Chemical"), Span(ref, 2, 3, "Disease")]
        ref.ents = spans
        ref.spans["bc5cdr"] = spans
        bc5cdr.append(Example(Doc(nlp.vocab, words=words), ref))
    nlp.initialize(lambda: jnlpba + bc5cdr)
    assert nlp.get_pipe("jnlpba").labels == ("cell_type", "protein")
    assert nlp.get_pipe("bc5cdr").labels == ("Chemical", "Disease")
    head = nlp.get_pipe("bc5cdr")
    before = params_of(head.model)
    losses = nlp.update(jnlpba, sgd=Adam(0.01))
    assert losses["bc5cdr"] == 0.0
    assert losses["jnlpba"] > 0.0
    after = params_of(head.model)
    assert before.keys() == after.keys() and len(before) > 2
    for key, value in after.items():
        assert np.array_equal(value, before[key]), key


def test_entities_outside_the_label_set_are_reported_not_learned():
    nlp = make_nlp()
    examples = toy_examples(nlp, 10)
    nlp.initialize(lambda: examples)
    words = ["aspirin", "activates", "IL-2"]
    ref = Doc(nlp.vocab, words=words)
    ref.spans["jnlpba"] = [Span(ref, 0, 1, "Chemical"), Span(ref, 2, 3, "protein")]
    example = Example(Doc(nlp.vocab, words=words), ref)
    head = nlp.get_pipe("jnlpba")
    gold = head.gold_tags(example)
    assert gold[0] == -1 and gold[1] == 0 and head.tags[gold[2]] == "B-protein"
    with pytest.warns(UserWarning, match=r"labelled \['Chemical'\] are not among this head's labels"):
        nlp.update([example], sgd=Adam(0.01))


def test_another_head_s_sentences_without_their_span_groups_are_named_as_the_cause(tmp_path):
    """spaCy's Corpus with gold_preproc cuts documents into sentences with Span.as_doc, which keeps
    doc.ents and drops doc.spans: every head then takes another corpus's sentences for its own gold,
    O where that corpus has no entity. The warning said only "check the span key"."""
    from spacy.tokens import DocBin
    from spacy.training import Corpus

    nlp = make_nlp(spans_key="bc5cdr", name="bc5cdr")
    head = nlp.get_pipe("bc5cdr")
    head.add_label("Chemical")
    nlp.initialize()
    docs = toy_docs(nlp.vocab, 4, spans_key="jnlpba")  # another head's corpus
    for doc in docs:
        doc[0].is_sent_start = True
        for token in doc[1:]:
            token.is_sent_start = False
    DocBin(docs=docs, store_user_data=True).to_disk(tmp_path / "jnlpba.spacy")
    for gold_preproc in (False, True):
        examples = list(Corpus(tmp_path / "jnlpba.spacy", gold_preproc=gold_preproc)(nlp))
        assert all(bool(eg.reference.spans) != gold_preproc for eg in examples)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            nlp.update(examples, sgd=Adam(0.01))
        said = " ".join(str(warning.message) for warning in caught)
        assert ("not among this head's labels" in said) == gold_preproc
        assert ("gold_preproc = false" in said) == gold_preproc


@pytest.mark.slow
@pytest.mark.parametrize("crf", [False, True], ids=["softmax", "crf"])
def test_transformer_pipeline_learns_and_covers_long_documents(tiny_bert, tmp_path, crf):
    nlp = transformer_pipeline(tiny_bert, crf)
    examples = toy_examples(nlp, 30)
    train(nlp, examples, steps=40, learn_rate=0.005)
    assert nlp.evaluate(examples)["ents_f"] >= 0.95
    # An entity after 1,000 tokens: far past the 16-token window and any
    # encoder limit, found because strided windows cover the whole document.
    assert_long_document_entity_survives_saving(nlp, tmp_path)


def assert_long_document_entity_survives_saving(nlp, tmp_path, n_filler=1020):
    """The entity after `n_filler` tokens is found, before and after a save and load."""
    filler = (["the", "expression", "of"] * n_filler)[:n_filler]
    words = filler + ["IL-2", "activates", "T", "cells"]
    doc = nlp(Doc(nlp.vocab, words=words))
    found = [(e.start, e.end, e.label_) for e in doc.ents]
    assert (len(filler), len(filler) + 1, "protein") in found
    nlp.to_disk(tmp_path / "model")
    reloaded = spacy.load(tmp_path / "model")
    assert [(e.start, e.end, e.label_) for e in reloaded(Doc(reloaded.vocab, words=words)).ents] == found


class RecordingSGD(Optimizer):
    """thinc's plain SGD, noting the learning-rate scale each parameter was updated with."""

    def __init__(self, learn_rate: float) -> None:
        super().__init__(learn_rate, L2=0.0, grad_clip=0.0, beta1=0.0, beta2=0.0, use_averages=False)
        self.scales = {}

    def __call__(self, key, weights, gradient, *, lr_scale=1.0):
        self.scales[key] = lr_scale
        return super().__call__(key, weights, gradient, lr_scale=lr_scale)


def test_learn_rate_scale_speeds_up_the_head_not_the_shared_transformer(tiny_bert):
    steps = {}
    for scale in (1.0, 10.0):
        fix_random_seed(0)
        nlp = transformer_pipeline(tiny_bert, settings={"components.jnlpba.learn_rate_scale": scale})
        examples = toy_examples(nlp, 8)
        nlp.initialize(lambda: examples)
        head = nlp.get_pipe("jnlpba").model
        before = head.get_ref("output_layer").get_param("W").copy()
        sgd = RecordingSGD(0.1)
        nlp.update(examples, sgd=sgd, drop=0.0)
        steps[scale] = head.get_ref("output_layer").get_param("W") - before
        # The zero-initialised output layer passes no gradient down on the first
        # update; on the second the transformer learns too.
        nlp.update(examples, sgd=sgd, drop=0.0)
        head_keys = {(node.id, name) for node in head.walk() for name in node.param_names}
        assert {sgd.scales[key] for key in head_keys} == {scale}  # output layer and CRF
        transformer_keys = set(sgd.scales) - head_keys
        assert transformer_keys and {sgd.scales[key] for key in transformer_keys} == {1.0}
    assert np.abs(steps[1.0]).max() > 0
    np.testing.assert_allclose(steps[10.0], 10 * steps[1.0], rtol=1e-4, atol=1e-8)


def test_gold_entities_follow_the_pipelines_own_tokenization():
    """GENIA keeps "IL-2" whole; the BioTokenizer splits it. Every piece is gold."""
    nlp = spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": "spacy_bioner.BioTokenizer.v1"}}})
    nlp.add_pipe("bio_ner", name="jnlpba", config={"spans_key": "jnlpba", "model": {"tok2vec": SMALL_TOK2VEC}})
    words = ["IL-2", "activates", "NF-kappa", "B", "."]
    reference = Doc(nlp.vocab, words=words, spaces=[True, True, True, False, False])
    reference.spans["jnlpba"] = [Span(reference, 0, 1, "protein"), Span(reference, 2, 4, "protein")]
    example = Example(nlp.make_doc(reference.text), reference)
    nlp.initialize(lambda: [example])
    head = nlp.get_pipe("jnlpba")
    tags = [head.tags[i] for i in head.gold_tags(example)]
    assert [t.text for t in example.predicted] == ["IL", "-", "2", "activates", "NF", "-", "kappa", "B", "."]
    assert tags == ["B-protein", "I-protein", "I-protein", "O", "B-protein", "I-protein", "I-protein", "I-protein", "O"]


def test_gold_entities_are_aligned_where_both_sides_have_as_many_tokens_but_other_ones():
    """As many tokens on both sides is not the same tokens: "p53" lies inside the pipeline's
    token "binds p53", which no tag can mark alone (unannotated), never on the token at its index."""
    nlp = make_nlp()
    reference = Doc(nlp.vocab, words=["IL-2", "binds", "p53"], spaces=[True, True, False])
    reference.spans["jnlpba"] = [Span(reference, 2, 3, "protein")]
    predicted = Doc(nlp.vocab, words=["IL", "-2", "binds p53"], spaces=[False, True, False])
    example = Example(predicted, reference)
    nlp.initialize(lambda: [example])
    head = nlp.get_pipe("jnlpba")
    assert tags_of(head, head.gold_tags(example)) == ["O", "O", None]


def test_update_passes_the_dropout_rate_to_the_head():
    nlp = make_nlp()
    examples = toy_examples(nlp, 4)
    nlp.initialize(lambda: examples)
    head = nlp.get_pipe("jnlpba").model
    rates = lambda: {node.attrs["dropout_rate"] for node in head.walk() if node.name == "dropout"}
    nlp.update(examples, sgd=Adam(0.01), drop=0.7)
    assert rates() == {0.7}
    nlp.update(examples, sgd=Adam(0.01), drop=0.2)
    assert rates() == {0.2}


@pytest.mark.parametrize("crf", [False, True], ids=["softmax", "crf"])
def test_update_adds_its_loss_to_the_losses_it_is_given(crf):
    """spaCy's training loop sums each component's loss over the steps it logs."""
    head = initialized_head(crf)
    examples = toy_examples(head, 4)  # in the head's vocab
    losses = head.update(examples, drop=0.0, sgd=None)
    once = losses["jnlpba"]
    assert once > 0
    assert head.update(examples, drop=0.0, sgd=None, losses=losses) is losses
    assert losses["jnlpba"] == pytest.approx(2 * once)


def test_token_tagger_v2_configs_still_build_and_v3_has_no_dropout_argument():
    """v3 dropped `dropout` (training sets every layer's rate); v2 accepts and ignores it."""
    from spacy.util import registry
    from thinc.api import noop

    v2 = registry.architectures.get("spacy_bioner.TokenTagger.v2")(tok2vec=noop(), nO=3, crf=True, dropout=0.5)
    v3 = registry.architectures.get("spacy_bioner.TokenTagger.v3")(tok2vec=noop(), nO=3, crf=True)
    assert [node.name for node in v2.walk()] == [node.name for node in v3.walk()]
    with pytest.raises(TypeError, match="dropout"):
        registry.architectures.get("spacy_bioner.TokenTagger.v3")(tok2vec=noop(), nO=3, dropout=0.5)


@pytest.mark.slow
def test_replaced_listener_keeps_the_window_splitting_through_training_and_saving(tiny_bert, tmp_path):
    """nlp.replace_listeners copies the transformer (Model.copy): the copy is
    still a BioTransformerModel, so a document longer than the encoder's 512
    positions in one window is split, not truncated, after training and reloading."""
    from spacy_bioner.layers.transformer import BioTransformerModel

    fix_random_seed(0)
    # One window per document: only the oversize splitting keeps a long document whole.
    get_spans = {"@span_getters": "spacy-transformers.doc_spans.v1"}
    nlp = transformer_pipeline(tiny_bert, settings={"components.transformer.model.get_spans": get_spans})
    examples = toy_examples(nlp, 20)
    nlp.initialize(lambda: examples)
    nlp.replace_listeners("transformer", "jnlpba", ["model.tok2vec"])
    nlp.remove_pipe("transformer")
    copies = [node for node in nlp.get_pipe("jnlpba").model.walk() if isinstance(node, BioTransformerModel)]
    assert len(copies) == 1 and copies[0].attrs["has_transformer"]
    optimizer = Adam(0.005)
    for _ in range(30):
        nlp.update(examples, sgd=optimizer)
    assert_long_document_entity_survives_saving(nlp, tmp_path, n_filler=900)


# --- Gold entities: overlaps, projection, missing annotation ---------------------


def tags_of(head, gold):
    return [head.tags[t] if t >= 0 else None for t in gold]


@pytest.mark.parametrize("crf", [False, True], ids=["softmax", "crf"])
def test_overlapping_gold_entities_keep_the_longest_and_are_reported_once(recwarn, crf):
    """Nested and crossing spans in a span group (GENIA, spancat data) would
    give an ill-formed IOB sequence: the CRF's partition beside a missing tag
    is then zero and one update makes every weight NaN."""
    nlp = make_nlp(crf=crf)
    words = "NF-kappa B activates the IL-2 receptor gene in T cells".split()
    ref = Doc(nlp.vocab, words=words)
    # Nested (cell_type inside protein), crossing (protein over protein), and an unknown label.
    ref.spans["jnlpba"] = [
        Span(ref, 3, 7, "protein"), Span(ref, 4, 5, "cell_type"), Span(ref, 0, 2, "protein"),
        Span(ref, 1, 3, "protein"), Span(ref, 8, 10, "RNA"),
    ]
    overlapping = Example(Doc(nlp.vocab, words=words), ref)
    examples = toy_examples(nlp, 10)
    nlp.initialize(lambda: examples)
    examples.append(overlapping)
    head = nlp.get_pipe("jnlpba")
    optimizer = Adam(0.01)
    for _ in range(3):
        losses = nlp.update(examples, sgd=optimizer)
    assert np.isfinite(losses["jnlpba"])
    for key, value in params_of(head.model).items():
        assert np.isfinite(value).all(), key
    overlaps = [str(w.message) for w in recwarn if "some gold entities overlap" in str(w.message)]
    assert len(overlaps) == 1, overlaps  # once, not per step
    assert "kept the longest (then the earliest)" in overlaps[0]
    assert "1 cell_type overlapping a protein, 1 protein overlapping a protein" in overlaps[0]
    # "activates" is in the dropped protein: unannotated, not O.
    assert tags_of(head, head.gold_tags(overlapping)) == [
        "B-protein", "I-protein", None, "B-protein", "I-protein", "I-protein", "I-protein", "O", None, None
    ]


def test_gold_entities_that_cannot_be_projected_are_unannotated_not_o():
    """As in spaCy's Example.get_aligned_ner: "IL2" of the reference is part
    of the pipeline's "IL2R" token, so that token's gold is unknown, not O."""
    nlp = make_nlp()
    nlp.initialize(lambda: toy_examples(nlp, 10))
    head = nlp.get_pipe("jnlpba")
    for key in ("jnlpba", None):  # gold from doc.spans, and from doc.ents alone
        ref = Doc(nlp.vocab, words=["IL2", "R", "binds", "p53"], spaces=[False, True, True, False])
        ref.ents = [Span(ref, 0, 1, "protein"), Span(ref, 3, 4, "protein")]
        if key:
            ref.spans[key] = list(ref.ents)
        example = Example(Doc(nlp.vocab, words=["IL2R", "binds", "p53"], spaces=[True, True, False]), ref)
        assert tags_of(head, head.gold_tags(example)) == [None, "O", "B-protein"]
        assert example.get_aligned_ner() == [None, "O", "U-protein"]


def test_empty_gold_spans_tag_no_token():
    """A SpanGroup accepts doc[i:i]: it is no entity, also at the end of the doc."""
    nlp = make_nlp()
    nlp.initialize(lambda: toy_examples(nlp, 10))
    head = nlp.get_pipe("jnlpba")
    words = ["IL-2", "binds", "p53"]
    for start in (1, 3):
        ref = Doc(nlp.vocab, words=words)
        ref.spans["jnlpba"] = [Span(ref, 0, 1, "protein"), Span(ref, start, start, "protein")]
        example = Example(Doc(nlp.vocab, words=words), ref)
        assert tags_of(head, head.gold_tags(example)) == ["B-protein", "O", "O"]


def test_a_span_added_to_a_heads_group_is_kept_without_a_score():
    """Scores belong to a group's spans by position: once the group changes,
    which is whose is unknown, and no span is dropped for want of one."""
    doc = Doc(spacy.blank("en").vocab, words="IL-2 activates NF-kappa B in T cells".split())
    group = doc.spans["jnlpba"] = head_group(doc, "jnlpba", [Span(doc, 0, 1, "protein"), Span(doc, 2, 4, "protein")],
                                             [0.9, 0.8], head="jnlpba")
    doc.ents = list(group)
    assert spans_with_scores(doc, "jnlpba") == [(doc.spans["jnlpba"][0], 0.9), (doc.spans["jnlpba"][1], 0.8)]
    assert head_ents(doc) == {(0, 1, "protein"): 0.9, (2, 4, "protein"): 0.8}
    doc.spans["jnlpba"].append(Span(doc, 5, 7, "cell_type"))
    assert [(span.text, score) for span, score in spans_with_scores(doc, "jnlpba")] == [
        ("IL-2", None), ("NF-kappa B", None), ("T cells", None)
    ]
    assert head_ents(doc) == {}


def test_missing_ner_annotation_in_doc_ents_is_unannotated_not_o():
    """Tokens whose doc.ents annotation is missing (ent_iob 0) teach nothing,
    with the same tokens on both sides and with different ones."""
    nlp = make_nlp(spans_key="ents")
    nlp.initialize(lambda: toy_examples(nlp, 10, spans_key="ents"))
    head = nlp.get_pipe("jnlpba")
    words = ["IL-2", "activates", "p53", "in", "T", "cells"]
    ref = Doc(nlp.vocab, words=words, ents=["B-protein", "O", None, None, "B-cell_type", "I-cell_type"])
    example = Example(Doc(nlp.vocab, words=words), ref)
    assert tags_of(head, head.gold_tags(example)) == ["B-protein", "O", None, None, "B-cell_type", "I-cell_type"]
    assert [tag is None for tag in example.get_aligned_ner()] == [False, False, True, True, False, False]
    split = Doc(nlp.vocab, words=["IL", "-", "2", "activates", "p53", "in", "T", "cells"],
                spaces=[False, False, True, True, True, True, True, False])
    example = Example(split, ref)
    assert tags_of(head, head.gold_tags(example)) == [
        "B-protein", "I-protein", "I-protein", "O", None, None, "B-cell_type", "I-cell_type"
    ]


def test_documents_whose_doc_ents_are_hidden_by_other_span_groups_are_reported():
    """A document with doc.spans is annotated for a head only through
    doc.spans[spans_key]: its doc.ents go unused, and the user is told why."""
    nlp = spacy.blank("en")
    nlp.add_pipe("bio_ner", config={"model": {"tok2vec": SMALL_TOK2VEC}})  # spans_key "ents"
    examples = toy_examples(nlp, 10, spans_key="sc")  # doc.ents, and an unrelated span group
    for example in examples[:5]:
        del example.reference.spans["sc"]
    with pytest.warns(UserWarning) as record:
        nlp.initialize(lambda: examples)
    out = " ".join(str(w.message) for w in record)
    assert "5 training documents have entities in doc.ents but are not annotated for this head" in out
    assert "span groups (['sc'])" in out and "doc.spans['ents']" in out
    fresh = spacy.blank("en")
    fresh.add_pipe("bio_ner", config={"model": {"tok2vec": SMALL_TOK2VEC}})
    with pytest.raises(ValueError, match=r"No entity labels.*5 training documents have entities in doc.ents.*\['sc'\]"):
        fresh.initialize(lambda: examples[5:])


def test_no_labels_says_whether_the_corpus_gave_no_document_or_none_for_this_head():
    """A corpus of no document (a wrong path, every sentence over spacy.Corpus's max_length) was
    told to convert its corpus with the right span key, which it had."""
    blank = spacy.blank("en")
    unannotated = [Example(blank.make_doc(text), blank.make_doc(text)) for text in ("IL-2 binds", "p53 in cells")]
    for name, examples in {"empty": [], "unannotated": unannotated}.items():
        nlp = spacy.blank("en")
        nlp.add_pipe("bio_ner", config={"spans_key": "genes", "model": {"tok2vec": SMALL_TOK2VEC}})
        with pytest.raises(ValueError) as error:
            nlp.initialize(lambda: iter(examples))  # as spacy train gives them: spaCy checks a list's length
        said = str(error.value)
        assert ("the training corpus gave no document" in said and "max_length" in said) == (name == "empty")
        assert ("no training document has doc.spans['genes']" in said) == (name != "empty")


def test_a_head_trained_on_documents_none_annotated_for_it_warns_once(recwarn):
    """A trained head (sourced: spaCy does not initialise it again) given a corpus whose entities are in
    another span group learns nothing; after NO_GOLD_WARNING_AFTER documents it says so, once, and
    why. A head that has seen its own gold does not."""
    nlp = make_nlp(spans_key="jnlpba", name="jnlpba")
    nlp.initialize(lambda: toy_examples(nlp, 20, spans_key="jnlpba"))
    others = toy_examples(nlp, NO_GOLD_WARNING_AFTER // 2, spans_key="ents")  # doc.ents, and the group "ents"
    nlp.update(others, sgd=Adam(0.01))
    assert not [w for w in recwarn if "is annotated for this head" in str(w.message)]
    nlp.update(others, sgd=Adam(0.01))
    nlp.update(others, sgd=Adam(0.01))
    (warning,) = [str(w.message) for w in recwarn if "is annotated for this head" in str(w.message)]
    assert warning.startswith(f"jnlpba: none of the first {NO_GOLD_WARNING_AFTER} training documents is annotated "
                              "for this head (doc.spans['jnlpba'], or doc.ents in a document without span groups)")
    assert f"{NO_GOLD_WARNING_AFTER} training documents have entities in doc.ents" in warning and "(['ents'])" in warning
    recwarn.clear()
    fresh = make_nlp(spans_key="jnlpba", name="jnlpba")
    fresh.initialize(lambda: toy_examples(fresh, 20, spans_key="jnlpba"))
    fresh.update(toy_examples(fresh, 5, spans_key="jnlpba") + others, sgd=Adam(0.01))  # its own gold first
    fresh.update(others + others, sgd=Adam(0.01))
    assert not [w for w in recwarn if "is annotated for this head" in str(w.message)]


def test_documents_annotated_without_entities_are_said_to_be_so():
    """Every document had the head's span group, empty: the error said none had it."""
    nlp = spacy.blank("en")
    nlp.add_pipe("bio_ner", name="jnlpba", config={"spans_key": "jnlpba", "model": {"tok2vec": SMALL_TOK2VEC}})
    examples = toy_examples(nlp, 2)
    for example in examples:
        example.reference.spans["jnlpba"] = []
    with pytest.raises(ValueError, match=r"2 training documents annotated for it \(doc.spans\['jnlpba'\] or "
                                         r"doc.ents\), but without an entity"):
        nlp.initialize(lambda: examples)


@pytest.mark.parametrize("disabled", [[], ["bc5cdr"]], ids=["enabled", "frozen"])
def test_other_heads_annotation_is_not_reported_as_hidden_doc_ents(recwarn, disabled):
    """Converted documents hold doc.ents and doc.spans[<their head>]: not a
    mistake for the pipeline's other head, even a disabled one (spacy train
    initialises with its frozen and sourced components disabled)."""
    nlp = make_nlp(spans_key="jnlpba", name="jnlpba")
    nlp.add_pipe("bio_ner", name="bc5cdr", config={"spans_key": "bc5cdr", "model": {"tok2vec": SMALL_TOK2VEC}})
    bc5cdr = toy_examples(nlp, 5, spans_key="bc5cdr")
    with nlp.select_pipes(disable=disabled):
        nlp.initialize(lambda: toy_examples(nlp, 5, spans_key="jnlpba") + bc5cdr)
    assert not [w for w in recwarn if "not annotated for this head" in str(w.message)]


def test_an_empty_label_is_refused():
    """Its tags ("B-") would be decoded into spans without a label, which spaCy cannot write."""
    nlp = make_nlp()
    examples = toy_examples(nlp, 4)
    reference = examples[0].reference
    reference.spans["jnlpba"] = [*reference.spans["jnlpba"], Span(reference, 0, 1)]
    with pytest.raises(ValueError, match="an empty entity label, from the gold entities"):
        nlp.initialize(lambda: examples)
    with pytest.raises(ValueError, match="an empty entity label, from add_label"):
        make_nlp().get_pipe("jnlpba").add_label("")


@pytest.mark.parametrize("crf", [False, True])
def test_a_loss_that_does_not_fit_the_model_is_refused_when_the_head_is_made(crf):
    with pytest.raises(ValueError, match="needs a model with a CRF" if not crf else "trains no CRF transitions"):
        spacy.blank("en").add_pipe("bio_ner", config={
            "model": {"crf": crf, "tok2vec": SMALL_TOK2VEC}, "loss": {"@losses": LOSSES[not crf]}})


@pytest.mark.parametrize("scale", [0, -1.0])
def test_learn_rate_scale_must_be_positive(scale):
    with pytest.raises(ValueError, match="learn_rate_scale is a positive factor"):
        spacy.blank("en").add_pipe("bio_ner", config={"model": {"tok2vec": SMALL_TOK2VEC}, "learn_rate_scale": scale})


# --- Labels ----------------------------------------------------------------------


def test_labels_added_before_initialize_are_kept():
    nlp = make_nlp(crf=True)
    head = nlp.get_pipe("jnlpba")
    assert head.add_label("Gene") == 1
    nlp.initialize(lambda: toy_examples(nlp, 10))
    assert head.labels == ("Gene", "cell_type", "protein")
    assert len(head.cfg["class_weights"]) == len(head.tags) == 7
    assert head.model.get_ref("output_layer").get_dim("nO") == 7  # the model is shaped for them too
    assert "jnlpba" in nlp("IL-2 activates Gene").spans


def test_labels_given_twice_make_one_tag_each():
    nlp = make_nlp(crf=True)
    head = nlp.get_pipe("jnlpba")
    examples = toy_examples(nlp, 10)
    head.initialize(lambda: examples, nlp=nlp, labels=["protein", "protein", "cell_type"])
    assert head.labels == ("cell_type", "protein")
    assert len(head.tags) == len(set(head.tags)) == 5
    assert head.model.get_ref("output_layer").get_dim("nO") == 5


def test_a_doc_annotated_again_holds_only_the_heads_new_entities():
    """A head that annotates a doc it annotated before replaces its old entities in
    doc.ents too, as on a fresh doc: they are no longer in its group, so they would
    count as set by something else and always win. A ruler's entity stays."""
    nlp = train(make_nlp(crf=True), toy_examples(make_nlp(), 40), steps=20)
    text = "IL-2 activates T cells"
    fresh = nlp(text)
    doc = nlp.make_doc(text)
    old = [Span(doc, 0, len(doc), label="cell_type")]  # what an earlier run of the head placed
    doc.spans["jnlpba"] = head_group(doc, "jnlpba", old, [0.9], head="jnlpba")
    doc.ents = old
    again = nlp(doc)
    assert [(e.start, e.end, e.label_) for e in again.ents] == [(e.start, e.end, e.label_) for e in fresh.ents]
    assert list(again.spans["jnlpba"]) == list(again.ents) != old

    ruled = nlp.make_doc(text)
    ruled.ents = [Span(ruled, 0, 1, label="GENE")]  # set by something else: stays, and wins
    assert [(e.text, e.label_) for e in nlp(ruled).ents if e.start == 0] == [("IL-2", "GENE")]


def test_the_entities_of_a_group_no_head_wrote_stay_and_the_head_replaces_it_with_a_warning():
    """A group under the head's key that no head wrote (a span_ruler given the key, gold read with
    the document) is not the head's earlier output: its entities in doc.ents were set by something
    else and stay, as on a fresh doc (they were taken out of doc.ents); the head says it replaces the group."""
    nlp = train(make_nlp(crf=True), toy_examples(make_nlp(), 40), steps=20)
    doc = nlp.make_doc("IL-2 activates T cells")
    ruled = [Span(doc, 1, 2, label="protein")]  # "activates": the head finds no entity there
    fresh = nlp(doc.text)
    assert ("activates", "protein") not in [(e.text, e.label_) for e in fresh.spans["jnlpba"]]
    doc.spans["jnlpba"] = ruled
    doc.ents = ruled
    with pytest.warns(UserWarning, match=r"doc.spans\['jnlpba'\] held spans no bio_ner head wrote"):
        annotated = nlp(doc)
    assert ("activates", "protein") in [(e.text, e.label_) for e in annotated.ents]
    assert is_head_group(annotated.spans["jnlpba"]) and list(annotated.spans["jnlpba"]) != ruled


@pytest.mark.parametrize("order", [("jnlpba", "bc5cdr"), ("bc5cdr", "jnlpba")])
def test_a_ruler_entity_a_head_predicts_too_stays_in_either_order(order):
    """An entity ruler's entity (no id) set before the heads, on exactly a head's prediction, was
    taken for that head's, and a surer overlapping entity of the other head replaced it: a second
    head took the user's rule entities away. It stays, as before spaCy's ner, whichever head runs
    first, and after a DocBin round trip; an entity a head placed still gives way to a surer one."""
    from spacy.tokens import DocBin

    from spacy_bioner.annotation import merge_into_ents

    nlp = spacy.blank("en")
    predictions = {"jnlpba": ([(2, 6, "cell_line")], [0.9]), "bc5cdr": ([(2, 3, "Chemical")], [0.4])}
    for ruled in (True, False):
        doc = nlp("Naloxone in IL-2 activated T cells")
        if ruled:
            doc.ents = [Span(doc, 2, 3, "Chemical")]  # a ruler's "IL-2"
        for key in order:
            spans = [Span(doc, *triple) for triple in predictions[key][0]]
            doc.spans[key] = head_group(doc, key, spans, predictions[key][1], head=key)
            merge_into_ents(doc, spans, predictions[key][1])
        expected = [("IL-2", "Chemical")] if ruled else [("IL-2 activated T cells", "cell_line")]
        assert [(e.text, e.label_) for e in doc.ents] == expected
        read = list(DocBin(docs=[doc]).get_docs(nlp.vocab))[0]
        assert head_ents(read) == head_ents(doc) == ({} if ruled else {(2, 6, "cell_line"): 0.9})


def test_a_head_records_the_entities_it_found_set_before_it(tiny_pipeline):
    """The head's group names the ruler's entity on exactly one of its spans, which is then no
    head's (`head_ents`), with a head's score or without."""
    nlp = spacy.load(tiny_pipeline)
    text = "IL-2 activates T cells and p53 binds DNA"
    plain = nlp(text)
    key, span = next((key, span) for key, group in plain.spans.items() for span in group)
    nlp.add_pipe("entity_ruler", first=True).add_patterns([{"label": span.label_, "pattern": span.text}])
    doc = nlp(text)
    assert (span.start_char, span.end_char, span.label_) in {(e.start_char, e.end_char, e.label_) for e in doc.ents}
    assert doc.spans[key].attrs["ents_set_before"] == [[span.start_char, span.end_char, span.label_]]
    assert (span.start, span.end, span.label_) not in head_ents(doc)


def test_doc_ents_are_the_same_whichever_order_three_heads_run_in():
    """A span that lost its place to a second head's gets it back where a third head's surer span
    takes the second's: chosen among the entities in doc.ents alone, it stayed out in four of the
    six orders."""
    from spacy_bioner.annotation import merge_into_ents

    predictions = {"a": (1, 3, "M", 0.9), "b": (0, 2, "L", 0.5), "c": (2, 4, "N", 0.95)}
    found = set()
    for order in itertools.permutations(predictions):
        doc = spacy.blank("en")("w0 w1 w2 w3 w4")
        for key in order:
            start, end, label, score = predictions[key]
            spans = [Span(doc, start, end, label)]
            doc.spans[key] = head_group(doc, key, spans, [score], head=key)
            merge_into_ents(doc, spans, [score])
        found.add(tuple((e.start, e.end, e.label_) for e in doc.ents))
    assert found == {((0, 2, "L"), (2, 4, "N"))}


def test_a_spancat_group_is_no_heads_and_does_not_unprotect_an_entity_on_its_span():
    """spaCy's spancat scores its groups in attrs["scores"] too: its group was taken for a head's, so
    a ruler's entity on one of its spans was replaced by a surer head's, and evaluate scored it."""
    from spacy_bioner.annotation import merge_into_ents, scored_keys

    for spancat in (False, True):
        doc = spacy.blank("en")("the IL-2 receptor alpha chain")
        if spancat:
            doc.spans["sc"] = SpanGroup(doc, name="sc", spans=[Span(doc, 1, 2, "GENE")], attrs={"scores": [0.4]})
        doc.ents = [Span(doc, 1, 2, "GENE")]  # the user's, or a ruler's
        head = [Span(doc, 1, 5, "protein")]
        doc.spans["jnlpba"] = head_group(doc, "jnlpba", head, [0.6], head="jnlpba")
        merge_into_ents(doc, head, [0.6])
        assert [(e.text, e.label_) for e in doc.ents] == [("IL-2", "GENE")]
        assert scored_keys(doc) == ["jnlpba"] and head_ents(doc) == {}


def test_a_loaded_head_weighs_its_training_counts_as_its_loss_is_configured(tmp_path):
    """The loss may be configured anew at loading (to resume training, or in a pipeline that
    sources the head); the saved weights were the trained loss's."""
    examples = toy_examples(make_nlp(), 30)
    weights = {}
    for scheme in ("welt", "inverse_frequency"):
        nlp = make_nlp(scheme)
        nlp.initialize(lambda: examples)
        weights[scheme] = list(nlp.get_pipe("jnlpba").cfg["class_weights"])
    assert weights["welt"] != weights["inverse_frequency"]
    nlp.to_disk(tmp_path / "model")
    as_welt = {"components": {"jnlpba": {"loss": {"scheme": "welt"}}}}
    head = spacy.load(tmp_path / "model", config=as_welt).get_pipe("jnlpba")
    assert head.loss.scheme == "welt" and head.cfg["class_weights"] == weights["welt"]
    assert list(head.loss.class_weights) == pytest.approx(weights["welt"])
    # A head saved without its counts (by an earlier version) keeps the weights it was trained with.
    cfg_file = tmp_path / "model" / "jnlpba" / "cfg"
    cfg_file.write_text(json.dumps({k: v for k, v in json.loads(cfg_file.read_text()).items() if k != "tag_counts"}))
    head = spacy.load(tmp_path / "model", config=as_welt).get_pipe("jnlpba")
    assert head.cfg["class_weights"] == pytest.approx(weights["inverse_frequency"], rel=1e-12)
    assert list(head.loss.class_weights) == pytest.approx(weights["inverse_frequency"])


@pytest.mark.parametrize("crf", [False, True], ids=["softmax", "crf"])
def test_labels_cannot_change_after_initialisation(crf):
    nlp = make_nlp(crf=crf)
    examples = toy_examples(nlp, 10)
    nlp.initialize(lambda: examples)
    head = nlp.get_pipe("jnlpba")
    weights = list(head.cfg["class_weights"])
    with pytest.raises(ValueError, match="Cannot add labels to the initialised bio_ner component 'jnlpba'") as error:
        head.add_label("Gene")
    assert 'factory = "bio_ner"` in place of `source`' in str(error.value)
    with pytest.raises(ValueError, match=r"shaped for 5 tags .* cannot be initialised again for 3"):
        head.initialize(lambda: examples, nlp=nlp, labels=["protein"])
    assert head.labels == ("cell_type", "protein")
    assert head.cfg["class_weights"] == weights and list(head.loss.class_weights) == weights
    assert head.model.get_ref("output_layer").get_dim("nO") == 5
    assert "jnlpba" in nlp("IL-2 activates T cells").spans  # still a working head
    head.initialize(lambda: examples, nlp=nlp)  # the same labels: allowed
    assert head.labels == ("cell_type", "protein")


def test_an_initialisation_that_fails_leaves_the_head_as_it_was(monkeypatch):
    """It kept the new labels and output size without weights: a retry with other labels was refused
    as if the head were trained, and a saved head passed as initialised."""
    nlp = make_nlp()
    head = nlp.get_pipe("jnlpba")
    examples = toy_examples(nlp, 10)
    initialize = type(head.model).initialize

    def interrupted(model, X=None, Y=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(head.model), "initialize", interrupted)
    with pytest.raises(KeyboardInterrupt):
        head.initialize(lambda: examples, nlp=nlp, labels=["protein"])
    assert head.labels == () and not head._was_initialized()
    assert head.model.get_ref("output_layer").maybe_get_dim("nO") is None
    monkeypatch.setattr(type(head.model), "initialize", initialize)
    head.initialize(lambda: examples, nlp=nlp)  # other labels: the first attempt left nothing behind
    assert head.labels == ("cell_type", "protein") and "jnlpba" in nlp("IL-2 activates T cells").spans


@pytest.mark.parametrize("crf", [False, True], ids=["softmax", "crf"])
def test_an_initialisation_that_fails_after_the_output_layer_says_why_and_can_be_retried(monkeypatch, crf):
    """The output layer had its weights when the next layer failed: putting its size back raised
    thinc's "Attempt to change dimension", which hid the failure; a retry with other labels, which
    thinc cannot shape it for, was told to remove nO from the config."""
    nlp = make_nlp(crf=crf)
    head = nlp.get_pipe("jnlpba")
    examples = toy_examples(nlp, 10)
    after_output = head.model.get_ref("crf" if crf else "output_layer")
    initialize = type(after_output).initialize

    def out_of_memory(model, X=None, Y=None):
        if model.id == after_output.id:
            if not crf:
                initialize(model, X, Y)  # the output layer gets its weights, then the step after it fails
            raise RuntimeError("CUDA out of memory")
        return initialize(model, X, Y)

    monkeypatch.setattr(type(after_output), "initialize", out_of_memory)
    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        head.initialize(lambda: examples, nlp=nlp)
    assert head.labels == () and not head._was_initialized()
    with pytest.raises(ValueError, match="an initialisation that failed shaped its output for 5 tags"):
        head.initialize(lambda: examples, nlp=nlp, labels=["protein"])
    monkeypatch.setattr(type(after_output), "initialize", initialize)
    head.initialize(lambda: examples, nlp=nlp)  # the same labels
    assert head.labels == ("cell_type", "protein") and "jnlpba" in nlp("IL-2 activates T cells").spans


# --- Predictions and updates -----------------------------------------------------


def test_entities_never_start_or_end_on_whitespace():
    """As spaCy's ner: whitespace tokens at an entity's ends are left out, an
    entity of whitespace alone is dropped; the score is the mean confidence
    of the tokens left."""
    nlp = make_nlp()
    nlp.initialize(lambda: toy_examples(nlp, 10))
    head = nlp.get_pipe("jnlpba")
    doc = Doc(nlp.vocab, words=["\n", "p53", "\n", "in", "T", "\n", "cells", " ", "\n"])
    tags = ["B-protein", "I-protein", "I-protein", "O", "B-cell_type", "I-cell_type", "I-cell_type",
            "I-cell_type", "B-protein"]
    path = np.asarray([head.tags.index(tag) for tag in tags], dtype="i")
    confidence = np.asarray([0.1, 0.9, 0.2, 1.0, 0.5, 0.6, 0.7, 0.3, 0.4], dtype="f")
    head.set_annotations([doc], [(path, confidence)])
    expected = [(1, 2, "protein"), (4, 7, "cell_type")]
    assert [(s.start, s.end, s.label_) for s in doc.spans["jnlpba"]] == expected
    assert [(e.start, e.end, e.label_) for e in doc.ents] == expected
    assert doc.spans["jnlpba"].attrs["scores"] == pytest.approx([0.9, 0.6])


def initialized_head(crf: bool = False) -> BioNER:
    """The "jnlpba" head of `make_nlp`, initialised on 10 toy examples."""
    nlp = make_nlp(crf=crf)
    nlp.initialize(lambda: toy_examples(nlp, 10))
    return nlp.get_pipe("jnlpba")


def written_spans(head: BioNER, words, tags, confidence):
    """The (start, end) and scores `head` writes for a decoded path, by set_annotations alone."""
    path = np.asarray([head.tags.index(tag) for tag in tags], dtype="i")
    doc = Doc(head.vocab, words=words)
    head.set_annotations([doc], [(path, np.asarray(confidence, dtype="f"))])
    group = doc.spans[head.spans_key]
    return [(s.start, s.end) for s in group], group.attrs["scores"]


def test_entities_are_cut_at_a_blank_line_and_shed_symbols_at_their_ends():
    """Found on user text: "tardive\n\ndyskinesia" was one Disease, "Aspirin 💊" kept the emoji
    (read as [UNK]), and private-use or BOM characters stood at an entity's ends."""
    head = initialized_head()
    words = ["tardive", "\n\n", "dyskinesia", "p53", "\n", "gene", "\ue000", "IL-2", "💊", "\ufeff", "®"]
    tags = ["B-protein", "I-protein", "I-protein", "B-cell_type", "I-cell_type", "I-cell_type", "B-protein",
            "I-protein", "I-protein", "I-protein", "B-protein"]
    spans, scores = written_spans(head, words, tags, [0.5, 0.1, 0.7, 0.4, 0.6, 0.8, 0.2, 0.9, 0.3, 0.3, 0.5])
    # One line end (text wrapped in lines) cuts nothing; a token of symbols alone is no entity.
    assert spans == [(0, 1), (2, 3), (3, 6), (7, 8)]
    assert scores == pytest.approx([0.5, 0.7, 0.6, 0.9])


def test_a_head_balances_brackets_as_configured():
    head = initialized_head()
    assert not head.balance_brackets  # off unless configured: older pipelines predict as they did
    words = ["dendritic", "cell", "(", "DC", "cells"]
    tags = ["B-cell_type", "I-cell_type", "I-cell_type", "I-cell_type", "O"]
    confidence = [0.8, 0.6, 0.1, 0.1, 1.0]
    for balance, expected, score in ((True, (0, 2), 0.7), (False, (0, 4), 0.4)):
        head.balance_brackets = balance
        spans, scores = written_spans(head, words, tags, confidence)
        assert spans == [expected]
        assert scores == pytest.approx([score])


def test_a_head_takes_letter_suffixes_and_joins_adjacent_entities_as_configured():
    head = initialized_head()
    assert not head.letter_suffix and head.join_adjacent == []  # older pipelines predict as they did
    words = ["protein", "kinase", "C", "and", "T", "helper", "cells"]
    tags = ["B-protein", "I-protein", "O", "O", "B-cell_type", "I-cell_type", "B-cell_type"]
    confidence = [0.8, 0.6, 0.1, 1.0, 0.9, 0.7, 0.2]
    # A span's score is the mean of its tokens decoded as an entity: not the letter's.
    for letter_suffix, join, expected, expected_scores in (
        (False, [], [(0, 2), (4, 6), (6, 7)], [0.7, 0.8, 0.2]),
        (True, ["cell_type"], [(0, 3), (4, 7)], [0.7, 0.6]),
        (True, ["protein"], [(0, 3), (4, 6), (6, 7)], [0.7, 0.8, 0.2]),
    ):
        head.letter_suffix, head.join_adjacent = letter_suffix, join
        spans, scores = written_spans(head, words, tags, confidence)
        assert spans == expected
        assert scores == pytest.approx(expected_scores)
    # Joined first, then the letters: entities the model decoded apart stay apart.
    spans, _ = written_spans(head, ["hepatitis", "B", "cirrhosis"], ["B-protein", "O", "B-protein"], confidence[:3])
    assert spans == [(0, 2), (2, 3)]


def test_join_adjacent_names_labels_of_the_head():
    nlp = make_nlp()
    nlp.get_pipe("jnlpba").join_adjacent = ["Disease"]
    with pytest.raises(ValueError, match=r"join_adjacent names \['Disease'\], which are not among its labels"):
        nlp.initialize(lambda: toy_examples(nlp, 10))
    with pytest.raises(ValueError, match=r"join_adjacent is a list of labels, e.g. \['protein'\]"):
        BioNER(nlp.vocab, nlp.get_pipe("jnlpba").model, loss=nlp.get_pipe("jnlpba").loss, join_adjacent="protein")


def test_update_without_an_optimizer_changes_no_weight():
    """sgd=False, as spaCy's pipes accept it: gradients, no step."""
    nlp = make_nlp(crf=True)
    examples = toy_examples(nlp, 4)
    nlp.initialize(lambda: examples)
    head = nlp.get_pipe("jnlpba")
    before = head.model.get_ref("output_layer").get_param("W").copy()
    for sgd in (None, False):
        losses = head.update(examples, sgd=sgd)
        assert losses["jnlpba"] > 0
    assert np.array_equal(head.model.get_ref("output_layer").get_param("W"), before)


@pytest.mark.parametrize("saved_crf", [True, False], ids=["crf-into-softmax", "softmax-into-crf"])
def test_loading_a_head_saved_with_another_model_says_so(tmp_path, saved_crf):
    saved = make_nlp(crf=saved_crf)
    saved.initialize(lambda: toy_examples(saved, 4))
    saved.get_pipe("jnlpba").to_disk(tmp_path / "head")
    other = make_nlp(crf=not saved_crf)
    with pytest.raises(ValueError, match="saved with another model .*CRF head loaded into a softmax one") as error:
        other.get_pipe("jnlpba").from_disk(tmp_path / "head")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("crf", [False, True], ids=["softmax", "crf"])
def test_a_head_saved_before_initialize_loads_and_then_learns(tmp_path, crf):
    """As spaCy's pipes do: a blank pipeline of the configs' heads (a CRF, join_adjacent)
    was refused on load, for "no CRF transitions saved" and a join_adjacent label it had
    not yet learned."""
    blank = make_nlp(crf=crf)
    blank.get_pipe("jnlpba").join_adjacent = ["protein"]
    blank.to_disk(tmp_path / "blank")
    for nlp in (spacy.load(tmp_path / "blank"), make_nlp(crf=crf).from_bytes(blank.to_bytes())):
        head = nlp.get_pipe("jnlpba")
        assert head.labels == ()
        examples = toy_examples(nlp, 40)
        train(nlp, examples, steps=60)
        assert nlp.evaluate(examples)["spans_jnlpba_f"] == 1.0
    with pytest.raises(ValueError, match=r"join_adjacent names \['Disease'\]"):
        spacy.load(tmp_path / "blank", config={"components": {"jnlpba": {"join_adjacent": ["Disease"]}}}).initialize(
            lambda: toy_examples(nlp, 4))


def test_loading_a_head_saved_with_features_into_one_without_says_so(tmp_path):
    """thinc's "mismatched structure" (another number of layers) was reported as corrupted files."""
    heads = []
    for features in (SPELLING, None):
        nlp = spacy.blank("en")
        nlp.add_pipe("bio_ner", name="jnlpba", config={"spans_key": "jnlpba", "model": {"tok2vec": SMALL_TOK2VEC, "features": features}})
        nlp.initialize(lambda: toy_examples(nlp, 4))
        heads.append(nlp.get_pipe("jnlpba"))
    with pytest.raises(ValueError, match=r"saved with another model \(Cannot deserialize model: mismatched structure\), .*features"):
        heads[1].from_bytes(heads[0].to_bytes())


def test_loading_another_heads_weights_says_so_and_keeps_the_config():
    """It said the files were corrupted, and left the other head's labels with this head's model."""
    saved = make_nlp(crf=True)
    saved.initialize(lambda: toy_examples(saved, 4))
    other = make_nlp(crf=True)
    head = other.get_pipe("jnlpba")
    head.initialize(lambda: toy_examples(other, 4), nlp=other, labels=["DNA", "cell_type", "protein"])
    with pytest.raises(ValueError, match=r"saved with another model \(Attempt to change dimension .*another head's"):
        head.from_bytes(saved.get_pipe("jnlpba").to_bytes())
    assert list(head.labels) == ["DNA", "cell_type", "protein"]
    assert list(saved.get_pipe("jnlpba").labels) == ["cell_type", "protein"]


def test_a_load_refused_after_the_weights_fit_keeps_the_config():
    """An IOB2 head of two labels and a BILUO head of one both have 5 tags: the
    weights load, the tag scheme is refused, and the head keeps its own config."""
    iob2 = make_nlp(crf=True, tag_scheme="IOB2")
    iob2.initialize(lambda: toy_examples(iob2, 6))
    head = iob2.get_pipe("jnlpba")
    biluo = make_nlp(crf=True, tag_scheme="BILUO")
    examples = toy_examples(biluo, 6)
    for eg in examples:
        eg.reference.spans["jnlpba"] = [span for span in eg.reference.spans["jnlpba"] if span.label_ == "protein"]
    biluo.initialize(lambda: examples)
    assert len(biluo.get_pipe("jnlpba").tags) == len(head.tags) == 5
    before = copy.deepcopy(head.cfg)
    with pytest.raises(ValueError, match="tag_scheme 'IOB2'.*BILUO"):
        head.from_bytes(biluo.get_pipe("jnlpba").to_bytes())
    assert head.cfg == before and head.tags == make_tags(["cell_type", "protein"], "IOB2")


@pytest.mark.parametrize("via", ["disk", "bytes"])
def test_loading_a_head_under_another_tag_scheme_says_so(tmp_path, via):
    iob2 = make_nlp(crf=True, tag_scheme="IOB2")
    iob2.initialize(lambda: toy_examples(iob2, 4))
    head = iob2.get_pipe("jnlpba")
    biluo = make_nlp(crf=True, tag_scheme="BILUO").get_pipe("jnlpba")
    with pytest.raises(ValueError, match="tag_scheme 'BILUO'.*IOB2") as error:
        if via == "disk":
            head.to_disk(tmp_path / "iob2-head")
            biluo.from_disk(tmp_path / "iob2-head")
        else:
            biluo.from_bytes(head.to_bytes())
    assert "\n" not in str(error.value)


def test_initialize_logs_the_class_weights_and_prints_nothing(caplog, capsys):
    nlp = make_nlp(scheme="inverse_frequency")
    with caplog.at_level("INFO", logger="spacy"):
        nlp.initialize(lambda: toy_examples(nlp, 10))
    head = nlp.get_pipe("jnlpba")
    logged = caplog.text
    assert "jnlpba: class weights (inverse_frequency, bio)" in logged
    for tag, weight in zip(head.tags, head.cfg["class_weights"]):
        assert f"{weight:.4f}" in logged and tag in logged
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_a_head_built_directly_scores_as_the_factorys():
    """As spaCy's own pipes: the scorer defaults to the component's own."""
    nlp = make_nlp()
    examples = toy_examples(nlp, 10)
    nlp.initialize(lambda: examples)
    head = nlp.get_pipe("jnlpba")
    direct = BioNER(nlp.vocab, head.model, loss=head.loss, spans_key="jnlpba")
    predicted = [Example(nlp(eg.reference.text), eg.reference) for eg in examples]
    scores = direct.score(predicted)
    assert scores == head.score(predicted)
    assert {"spans_jnlpba_f", "ents_f"} <= set(scores)


def _threads_after_running(path):
    """In a forked child: torch's threads after the pipeline at `path` ran (or not)."""
    import torch

    if path is not None:
        spacy.load(path)("IL-2 in T cells.")
    return torch.get_num_threads()


def test_a_forked_process_that_runs_the_encoder_runs_torch_on_one_thread(tiny_pipeline):
    """nlp.pipe(n_process=N) forks its workers; one entering torch's OpenMP
    pool, whose threads stayed in the parent, would wait for them forever.
    A forked process that does not run the encoder keeps its threads."""
    import multiprocessing

    import torch

    spacy.load(tiny_pipeline)("Warm up.")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with multiprocessing.get_context("fork").Pool(1) as pool:
            assert pool.apply(_threads_after_running, (str(tiny_pipeline),)) == 1
        with multiprocessing.get_context("fork").Pool(1) as pool:
            assert pool.apply(_threads_after_running, (None,)) == 2
        assert torch.get_num_threads() == 2  # the parent keeps its threads
    finally:
        torch.set_num_threads(threads)


PIPE_IN_TWO_PROCESSES = """
import sys, spacy, torch
nlp = spacy.load(sys.argv[1])
torch.ones(1 << 22).sum()  # the parent has used torch's threads
texts = [f"Cisplatin {i} and IL-2 in T cells." for i in range(6)]
one = [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]
two = [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(texts, n_process=2, batch_size=2)]
assert one == two, (one, two)
print(sum(map(len, two)))  # the entities found: equal lists of no entities would show nothing
"""


def test_nlp_pipe_with_two_processes(tiny_pipeline):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", PIPE_IN_TWO_PROCESSES, str(tiny_pipeline)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) > 0, done.stdout


def test_a_head_warns_once_when_the_transformer_did_not_run(tiny_pipeline, recwarn):
    nlp = spacy.load(tiny_pipeline)
    nlp("IL-2 in T cells.")
    assert not [w for w in recwarn if "listens to the transformer" in str(w.message)]
    with nlp.select_pipes(disable=["transformer"]):
        with pytest.warns(UserWarning, match="'jnlpba' listens to the transformer component, which has not run") as caught:
            nlp("IL-2 in T cells.")
            nlp("Cisplatin.")
    assert sum("'jnlpba' listens" in str(w.message) for w in caught) == 1
    assert "annotating_components" in str(next(w for w in caught if "'jnlpba' listens" in str(w.message)).message)


def test_two_heads_writing_one_spans_key_are_refused():
    """Each replaced the other's span group and its entities in doc.ents, without a word."""
    nlp = make_nlp(spans_key="jnlpba", name="drugs")
    nlp.add_pipe("bio_ner", name="diseases", config={"spans_key": "jnlpba", "model": {"tok2vec": SMALL_TOK2VEC}})
    examples = toy_examples(nlp, 4)
    with pytest.raises(ValueError, match=r"'diseases' and 'drugs' both write doc.spans\['jnlpba'\]: give each head"):
        nlp.initialize(lambda: examples)
    nlp.get_pipe("diseases").spans_key = "diseases"
    examples += toy_examples(nlp, 4, spans_key="diseases", seed=1)
    nlp.initialize(lambda: examples)


def test_two_loaded_heads_of_one_key_say_so_and_one_moves_to_another(tmp_path):
    """Sourced heads are not initialized (spacy train, add_pipe(source=...)): two of one key each replaced
    the other's group without a word. A saved head keeps its key whatever the config says (as spancat)."""
    nlp = make_nlp()
    nlp.initialize(lambda: toy_examples(nlp, 8))
    nlp.to_disk(tmp_path / "trained")
    kept = spacy.load(tmp_path / "trained", config={"components": {"jnlpba": {"spans_key": "genes"}}})
    assert kept.get_pipe("jnlpba").spans_key == "jnlpba"
    # Two copies of one head, as when fine-tuning: the second replaces the first's group, with a word, once.
    nlp.add_pipe("jnlpba", name="jnlpba_v2", source=spacy.load(tmp_path / "trained"))
    with pytest.warns(UserWarning, match=r"'jnlpba' and 'jnlpba_v2' both write doc.spans\['jnlpba'\]") as caught:
        nlp("IL-2 activates T cells .")
        nlp("IL-2 activates T cells .")
    assert sum("both write" in str(w.message) for w in caught) == 1
    assert nlp("IL-2 activates T cells .").spans["jnlpba"].attrs["bio_ner"] == "jnlpba_v2"
    # Moved, each writes its own group, and the key is saved with it.
    nlp.get_pipe("jnlpba_v2").spans_key = "jnlpba_v2"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        doc = nlp("IL-2 activates T cells .")
    assert {key: group.attrs["bio_ner"] for key, group in doc.spans.items()} == {
        "jnlpba": "jnlpba", "jnlpba_v2": "jnlpba_v2"}
    nlp.to_disk(tmp_path / "both")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        doc = spacy.load(tmp_path / "both")("IL-2 activates T cells .")
    assert set(doc.spans) == {"jnlpba", "jnlpba_v2"}


def test_a_document_annotated_before_by_a_head_since_renamed_is_annotated_again_without_a_word():
    nlp = make_nlp(spans_key="genes_of_this_test", name="first")
    nlp.initialize(lambda: toy_examples(nlp, 8, spans_key="genes_of_this_test"))
    doc = nlp("IL-2 activates T cells .")
    nlp.rename_pipe("first", "second")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert nlp(doc).spans["genes_of_this_test"].attrs["bio_ner"] == "second"


def test_a_model_that_is_no_token_tagger_is_refused_with_the_architecture_to_use():
    """As a user who turns a `spacy init config` ner into bio_ner finds: the parser's model is kept."""
    parser = {"@architectures": "spacy.TransitionBasedParser.v2", "state_type": "ner", "extra_state_tokens": False,
              "hidden_width": 8, "maxout_pieces": 2, "use_upper": True, "tok2vec": SMALL_TOK2VEC}
    expected = r'no token tagger .* "spacy_bioner.TokenTagger.v3" in \[components.ner.model\]'
    with pytest.raises(ValueError, match=expected):
        spacy.blank("en").add_pipe("bio_ner", name="ner", config={"model": parser})


def test_nO_in_the_model_config_is_named_as_the_cause():
    nlp = spacy.blank("en")
    nlp.add_pipe("bio_ner", name="jnlpba", config={"spans_key": "jnlpba",
                                                   "model": {"tok2vec": SMALL_TOK2VEC, "nO": 3}})
    with pytest.raises(ValueError, match=r"its model config sets nO = 3.*remove nO from \[components.jnlpba.model\]"):
        nlp.initialize(lambda: toy_examples(nlp, 4))


def test_without_labels_or_examples_the_error_names_the_labels_setting():
    nlp = make_nlp()
    with pytest.raises(ValueError, match=r"give the labels in \[initialize.components.jnlpba\] labels"):
        nlp.initialize()


def test_a_transformer_run_before_initialisation_says_so(tiny_bert):
    nlp = transformer_pipeline(tiny_bert)
    with pytest.raises(ValueError, match="The transformer has no encoder loaded yet: initialise the pipeline first"):
        nlp("IL-2 activates T cells")


@pytest.mark.parametrize("crf", [False, True], ids=["softmax", "crf"])
def test_scores_that_are_not_finite_are_refused_not_decoded(crf):
    """A diverged head's NaN scores made every confidence NaN, on which doc.ents were merged."""
    nlp = make_nlp(crf=crf)
    nlp.initialize(lambda: toy_examples(nlp, 4))
    output = nlp.get_pipe("jnlpba").model.get_ref("output_layer")
    output.set_param("b", output.get_param("b") * np.nan)
    with pytest.raises(ValueError, match=r"'jnlpba': its scores are not finite \(NaN or infinite\) in 2 of 2"):
        list(nlp.pipe(["IL-2 activates T cells", "NF-kappa B binds DNA"]))


def test_score_weights_of_a_key_no_head_writes_are_warned_of(tiny_bert, recwarn):
    """A head given another spans_key than its config's, the config's score weights kept: spaCy scored
    every evaluation 0.00, so model-best was the last one and patience never ended a run."""
    weights = {"training.score_weights": {"spans_jnlpba_f": 1.0, "ents_f": 0.0}}
    nlp = transformer_pipeline(tiny_bert, heads=("genes",), settings={**weights, "nlp.pipeline": ["transformer", "genes"]})
    assert nlp.pipe_names == ["transformer", "genes"]
    nlp.initialize(lambda: toy_examples(nlp, 4, spans_key="genes"))
    messages = [str(w.message) for w in recwarn if "score_weights" in str(w.message)]
    assert messages == ["[training.score_weights] weighs spans_jnlpba_f, which no component of the pipeline scores "
                        "(spaCy counts them 0, so dev scores cannot choose model-best): weigh the heads' scores "
                        "instead (spans_genes_f, KEY each head's spans_key)"]
    recwarn.clear()
    ours = transformer_pipeline(tiny_bert, settings=weights)
    ours.initialize(lambda: toy_examples(ours, 4))
    assert not [w for w in recwarn if "score_weights" in str(w.message)]
    # Beside a score that is written (the factory's default ents_f), half of the score chose nothing.
    mixed = {"training.score_weights": {"spans_GENES_f": 0.5, "ents_f": 0.5}}
    other = transformer_pipeline(tiny_bert, heads=("genes",), settings={**mixed, "nlp.pipeline": ["transformer", "genes"]})
    other.initialize(lambda: toy_examples(other, 4, spans_key="genes"))
    assert [str(w.message) for w in recwarn if "score_weights" in str(w.message)] == [
        "[training.score_weights] weighs spans_GENES_f, which no component of the pipeline scores (spaCy counts "
        "them 0, so 0.5 of the weights' 1 choose nothing): weigh the heads' scores instead (spans_genes_f, KEY "
        "each head's spans_key)"]


def test_gold_entities_no_pipeline_tokens_hold_are_counted_and_warned_of_once(recwarn):
    """An entity that ends inside a token of the pipeline's tokenizer (spaCy's own, on a corpus made
    for the BioTokenizer) was left unannotated without a word."""
    nlp = make_nlp()
    vocab = nlp.vocab

    def example(words, spaces, ents):
        reference = Doc(vocab, words=words, spaces=spaces)
        reference.ents = [Span(reference, start, end, label) for start, end, label in ents]
        return Example(Doc(vocab, words=["IL-2", "binds", "NF-kB"], spaces=[True, True, False]), reference)

    split = (["IL", "-2", "binds", "NF", "-kB"], [False, True, True, False, False])
    examples = [example(*split, [(0, 1, "protein"), (2, 3, "protein"), (3, 4, "DNA")]) for _ in range(3)]
    nlp.initialize(lambda: examples)
    messages = [str(w.message) for w in recwarn if "inside a token" in str(w.message)]
    assert messages == ["jnlpba: 6 gold entities (DNA 3, protein 3) start or end inside a token of the pipeline's "
                        "tokenizer (the first: 'IL' in 'IL-2 binds NF-kB'): no tokens of the pipeline hold them, so "
                        "theirs are left unannotated, not learned. Tokenize as the gold does (the BioTokenizer, for "
                        "the corpora it was made for), or train on the gold's tokens (spacy_bioner.MultiCorpus.v1, "
                        "gold_tokens = true)."]
    head = nlp.get_pipe("jnlpba")
    assert list(head.gold_tags(examples[0])) == [-1, head.tags.index("B-protein"), -1]
    recwarn.clear()
    nlp.update(examples, sgd=Adam(0.001))
    assert not [w for w in recwarn if "inside a token" in str(w.message)]  # once


def test_a_corpus_that_begins_with_empty_documents_initializes(tiny_bert):
    """PubMed records without an abstract sorted first: ten empty documents made the sample the
    transformer's listener was initialised on, and it failed (need at least one array to concatenate)."""
    nlp = transformer_pipeline(tiny_bert)
    empty = [Example(nlp.make_doc(""), nlp.make_doc("")) for _ in range(10)]
    for eg in empty:
        eg.reference.spans["jnlpba"] = []
    nlp.initialize(lambda: empty + toy_examples(nlp, 4))
    assert nlp.get_pipe("jnlpba").labels
