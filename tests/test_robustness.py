"""Robustness (issue #6): wild corpora, odd text at inference, awkward training
data and broken pipelines or encoders. Everything runs on the CPU with a tiny
random BERT (tests/toy.py): nothing is downloaded.

1. Readers and `convert` (the rest is in test_readers.py / test_convert.py):
   errors through the command line, --max-loss with its default, stray
   columns, atomic writes, and fuzzing with random lines and offsets.
2. Inference: empty, whitespace, one character, 200,000 characters, Greek
   letters, µ, ±, NBSP, emoji, control and zero-width characters, mixed
   newlines; entities far past the encoder's first window; nlp.pipe with
   batch sizes 1 and 256.
3. Training: a DocBin with a document longer than the encoder window, one
   with no entities, an empty one and one with a label the head lacks.
4. Loading: a missing or corrupted pipeline, an encoder that cannot be found.
"""

import gzip
import os
import shutil
import stat
import sys
import time
from pathlib import Path
from typing import List, Tuple

import numpy
import pytest
import spacy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example
from thinc.api import Adam, fix_random_seed
from typer.testing import CliRunner

from spacy_bioner import conversion
from spacy_bioner.cli import app
from spacy_bioner.conversion import ConversionError, write_docbin
from spacy_bioner.decoding import is_well_formed
from spacy_bioner.encoders import EncoderNotFound
from spacy_bioner.readers import read_iob, read_pubtator
from spacy_bioner.tokenizer import make_bio_nlp
from toy import TRANSFORMER_PIPELINE_CONFIG, make_tiny_bert, toy_sentences

runner = CliRunner()
NLP = make_bio_nlp()

BIO_TOKENIZER = """
[nlp.tokenizer]
@tokenizers = "spacy_bioner.BioTokenizer.v1"
"""


def char_ents(doc) -> List[Tuple[int, int, str]]:
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


# --- 1. readers and convert --------------------------------------------------


def invoke_convert(fmt, src, out, *args):
    result = runner.invoke(app, ["convert", fmt, str(src), str(out), *map(str, args)])
    return result, result.stderr.strip().splitlines()


def assert_failed_cleanly(result, lines, *expected):
    assert result.exit_code == 1
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for text in expected:
        assert text in lines[0]
    assert "Traceback" not in result.output


CONVERT_ERRORS = [
    # format, file name, data, where, problem
    ("iob", "latin1.iob", b"a\tO\n\xe9t\xe9\tO\n", ":2:", "not UTF-8"),
    ("pubtator", "latin1.pubtator", b"1|t|Caf\xe9.\n", ":1:", "not UTF-8"),
    ("jnlpba", "notag.iob2", b"###MEDLINE:1\n\nIL-2\tB-protein\nx\n", ":4:", "no tag"),
    ("jnlpba", "prefix.iob2", b"###MEDLINE:1\n\nIL-2\tQ-protein\n", ":3:", "unknown tag"),
    ("pubtator", "text.pubtator", b"7|t|Cocaine.\n7|a|x\n7\t0\t7\tcocaine\tChemical\t-1\n", ":3: PMID 7", "does not match"),
    ("pubtator", "range.pubtator", b"7|t|Cocaine.\n7|a|x\n7\t3\t70\tCocaine\tChemical\t-1\n", ":3: PMID 7", "outside the text"),
    ("jnlpba", "empty.iob2", b"", ":1:", "empty file"),
    ("pubtator", "blank.pubtator", b"\r\n\r\n", ":1:", "empty file"),
]


@pytest.mark.parametrize("fmt,name,data,where,problem", CONVERT_ERRORS)
def test_convert_bad_input_one_line_exit_1_nothing_written(tmp_path, fmt, name, data, where, problem):
    src = tmp_path / name
    src.write_bytes(data)
    out = tmp_path / "out" / "train.spacy"
    result, lines = invoke_convert(fmt, src, out)
    assert_failed_cleanly(result, lines, f"{src}{where}", problem)
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_convert_truncated_gz(tmp_path):
    data = gzip.compress(b"###MEDLINE:1\n\n" + b"".join(b"w%d\tO\n" % i for i in range(3000)))
    src = tmp_path / "Genia.iob2.gz"
    src.write_bytes(data[: len(data) // 2])
    result, lines = invoke_convert("jnlpba", src, tmp_path / "train.spacy")
    assert_failed_cleanly(result, lines, f"{src}:", "truncated .gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Genia.iob2.gz"]


def pubtator_with_misaligned(n_aligned: int, n_misaligned: int) -> bytes:
    """One abstract per mention: aligned ones, then ones inside a token ("expanded")."""
    lines = []
    for i in range(n_aligned + n_misaligned):
        pmid = 100 + i
        lines += [f"{pmid}|t|Cocaine and Na+/K+-ATPase.", f"{pmid}|a|It hurts."]
        if i < n_aligned:
            lines.append(f"{pmid}\t0\t7\tCocaine\tChemical\tD1")
        else:
            lines.append(f"{pmid}\t1\t7\tocaine\tChemical\tD1")  # not at a token start
        lines.append("")
    return "\n".join(lines).encode()


def test_convert_default_max_loss_is_half_a_percent(tmp_path):
    src = tmp_path / "in.pubtator"
    out = tmp_path / "train.spacy"
    # 1 of 200 entities moved (0.5%, not more than 0.5%): written.
    src.write_bytes(pubtator_with_misaligned(199, 1))
    result, _ = invoke_convert("pubtator", src, out)
    assert result.exit_code == 0, result.output
    assert "misaligned, expanded" in result.stdout and "'ocaine' [1:7] -> 'Cocaine'" in result.stdout
    before = out.read_bytes()
    # 1 of 150 (0.67%): refused, with the expanded entity listed, and the
    # existing output left as it was.
    src.write_bytes(pubtator_with_misaligned(149, 1))
    result, lines = invoke_convert("pubtator", src, out)
    assert_failed_cleanly(result, lines, str(out), "0.667% of the entities would be lost", "--max-loss 0.500%")
    assert "expanded Chemical at" in result.stdout
    assert out.read_bytes() == before
    # A larger --max-loss lets it through.
    result, _ = invoke_convert("pubtator", src, out, "--max-loss", "0.01")
    assert result.exit_code == 0
    assert len(list(DocBin().from_disk(out).get_docs(NLP.vocab))) == 150


def test_convert_max_loss_checks_dev_output_and_writes_neither(tmp_path):
    src = tmp_path / "in.pubtator"
    # The training part is clean; the last (dev) document loses its entity.
    src.write_bytes(pubtator_with_misaligned(300, 1))
    train, dev = tmp_path / "train.spacy", tmp_path / "dev.spacy"
    result, lines = invoke_convert("pubtator", src, train, "--dev-docs", 1, "--dev-output", dev)
    assert_failed_cleanly(result, lines, str(dev), "100.000% of the entities would be lost")
    assert not train.exists() and not dev.exists()


def test_write_docbin_failure_leaves_no_partial_file(tmp_path, monkeypatch):
    out = tmp_path / "train.spacy"
    out.write_bytes(b"previous corpus")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(conversion.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_docbin([NLP("IL-2 activates T cells")], out)
    assert [p.name for p in tmp_path.iterdir()] == ["train.spacy"]
    assert out.read_bytes() == b"previous corpus"


def test_written_corpus_has_the_usual_file_mode(tmp_path):
    """Readable by whoever may read a file created here, not just its owner."""
    umask = os.umask(0o022)
    try:
        out = write_docbin([NLP("IL-2 activates T cells")], tmp_path / "train.spacy")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_stray_columns(tmp_path):
    """IOB: the first column is the token and the last the tag; columns in
    between (POS, chunk) and empty trailing columns are ignored. PubTator:
    columns after the 7th (composite) are ignored."""
    iob = tmp_path / "x.iob"
    iob.write_bytes(b"IL-2\tNN\tB-NP\tB-protein\t\r\ngene NN I-protein  \r\nx\tO\t\t\n")
    docs, _ = read_iob(iob, NLP.vocab)
    assert [t.text for t in docs[0]] == ["IL-2", "gene", "x"]
    assert [(e.text, e.label_) for e in docs[0].ents] == [("IL-2 gene", "protein")]
    pubtator = tmp_path / "x.pubtator"
    pubtator.write_bytes(
        b"1|t|Aspirin toxicity.\n1|a|None.\n1\t0\t7\tAspirin\tChemical\tD001241\t\tstray\textra\n"
    )
    docs, report = read_pubtator(pubtator, NLP)
    assert [(e.text, e.kb_id_) for e in docs[0].ents] == [("Aspirin", "D001241")]
    assert not report.issues


def assert_one_line_error(err: ConversionError, path: Path) -> None:
    message = str(err)
    assert "\n" not in message and message.startswith(f"{path}:")


LINE = st.text(alphabet="ab -\tBIOESX|t0123456789\r\ufeff\xa0µ", max_size=14)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LINE, max_size=12))
def test_fuzz_iob_random_lines(tmp_path, lines):
    """Random lines: a clear error, or every token line becomes one token and
    every entity is a run of tokens tagged with its label."""
    path = tmp_path / "random.iob"
    path.write_bytes("\n".join(lines).encode())
    try:
        docs, _ = read_iob(path, NLP.vocab, spans_key="k")
    except ConversionError as err:
        assert_one_line_error(err, path)
        return
    rows = []
    for line in "\n".join(lines).removeprefix("\ufeff").split("\n"):
        line = line[:-1] if line.endswith("\r") else line
        if line.strip() and not line.strip().startswith(("-DOCSTART-", "###MEDLINE:")):
            parts = [p.strip() for p in (line.split("\t") if "\t" in line else line.split())]
            rows.append((parts[0], [p for p in parts if p][-1]))
    assert [t.text for doc in docs for t in doc] == [word for word, _ in rows]
    offset = 0
    for doc in docs:
        assert list(doc.spans["k"]) == list(doc.ents)
        tags = [tag for _, tag in rows[offset : offset + len(doc)]]
        # Tokens tagged O are outside entities; the others inside one of their label.
        assert [t.ent_type_ or "O" for t in doc] == [tag if tag == "O" else tag[2:] for tag in tags]
        offset += len(doc)


@st.composite
def pubtator_random_offsets(draw):
    words = draw(st.lists(st.text(alphabet="abcαµ±-()", min_size=1, max_size=5), min_size=2, max_size=8))
    n_title = draw(st.integers(1, len(words) - 1))
    title, abstract = " ".join(words[:n_title]), " ".join(words[n_title:])
    text = f"{title} {abstract}"
    mentions = []
    for _ in range(draw(st.integers(0, 5))):
        start = draw(st.integers(-3, len(text) + 3))
        end = draw(st.integers(-3, len(text) + 3))
        # Mostly the real text at those offsets, sometimes a wrong one.
        real = text[max(start, 0) : max(end, 0)]
        mention = draw(st.sampled_from([real, real, real, real + "x", "Cocaine"]))
        mentions.append((start, end, mention.replace("\t", " "), draw(st.sampled_from(["Chemical", "Disease"]))))
    return title, abstract, text, mentions


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=pubtator_random_offsets())
def test_fuzz_pubtator_random_offsets(tmp_path, doc):
    """Random offsets: a clear error naming the line and PMID, or each mention
    is kept exactly, kept expanded to token boundaries, or dropped, and each
    change is reported."""
    title, abstract, text, mentions = doc
    lines = [f"42|t|{title}", f"42|a|{abstract}"]
    lines += [f"42\t{s}\t{e}\t{m}\t{label}\tD{k}" for k, (s, e, m, label) in enumerate(mentions)]
    path = tmp_path / "random.pubtator"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    bad = [k for k, (s, e, m, _) in enumerate(mentions) if not (0 <= s < e <= len(text) and text[s:e] == m)]
    if bad:
        with pytest.raises(ConversionError) as excinfo:
            read_pubtator(path, NLP)
        assert_one_line_error(excinfo.value, path)
        assert f"{path}:{3 + bad[0]}: PMID 42:" in str(excinfo.value)
        return
    (parsed,), report = read_pubtator(path, NLP)
    assert parsed.text == text
    assert list(parsed.spans["bc5cdr"]) == list(parsed.ents)
    exact = {(s, e, label) for s, e, _, label in mentions}
    kept = char_ents(parsed)
    n_exact = sum(1 for ent in kept if ent in exact)
    assert n_exact + len(report.expanded) + len(report.dropped) >= len(mentions)
    assert len(kept) + len(report.dropped) == len(mentions)
    for ent in parsed.ents:
        assert text[ent.start_char : ent.end_char] == ent.text
        if (ent.start_char, ent.end_char, ent.label_) not in exact:
            # Expanded to token boundaries: covers a mention (less its spaces).
            assert any(
                ent.start_char <= s + len(m) - len(m.lstrip()) and e - len(m) + len(m.rstrip()) <= ent.end_char
                for s, e, m, _ in mentions
            )


# --- 2. inference -----------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    fix_random_seed(0)
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def transformer_nlp(encoder: Path, extra: str = ""):
    fix_random_seed(0)
    config = spacy.util.load_config_from_str(
        TRANSFORMER_PIPELINE_CONFIG.format(encoder=encoder, crf="false") + BIO_TOKENIZER + extra
    )
    return spacy.util.load_model_from_config(config, auto_fill=True, validate=True)


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
    assert isinstance(doc, Doc)
    assert doc.text == text
    for span in list(doc.ents) + list(doc.spans["jnlpba"]):
        assert text[span.start_char : span.end_char] == span.text
    tags = ["O" if t.ent_iob_ == "O" else f"{t.ent_iob_}-{t.ent_type_}" for t in doc]
    assert is_well_formed(tags)


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


def test_tokens_without_wordpieces_get_vectors(trained_nlp):
    """Control, zero-width and soft-hyphen tokens produce no wordpieces in the
    BERT tokenizer; they are still tagged (O), and their neighbours found."""
    text = "IL-2 \x00 \u200b \u00ad T cells"
    doc = trained_nlp(text)
    no_pieces = [t.text for t, n in zip(doc, doc._.trf_data.align.lengths) if n == 0]
    assert {"\x00", "\u200b", "\u00ad"} <= set(no_pieces)
    assert [(e.text, e.label_) for e in doc.ents] == [("IL-2", "protein"), ("T cells", "cell_type")]


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


def test_oversize_windows_are_cut_into_fitting_consecutive_pieces(trained_nlp):
    """Every token stays covered, in order, and no piece exceeds the limit."""
    from spacy_bioner.encoders import WindowSplitter, _max_pieces

    model = trained_nlp.get_pipe("transformer").model
    tokenizer, limit = model.tokenizer, _max_pieces(model)
    long_doc = trained_nlp.make_doc("IL-2 " * limit + "." * (limit + 100) + " T cells " * limit)
    short_doc = trained_nlp.make_doc("IL-2 activates T cells")
    split = WindowSplitter()
    for _ in range(2):  # the second time from cached piece counts
        pieces, short_pieces = split([[long_doc[:]], [short_doc[:]]], model)
        assert [t.i for piece in pieces for t in piece] == list(range(len(long_doc)))
        for piece in pieces:
            n = len(tokenizer([t.text for t in piece], add_special_tokens=False, is_split_into_words=True)["input_ids"])
            assert n <= limit or len(piece) == 1  # one token longer than the limit stands alone
        assert any(len(piece) == 1 and len(piece.text) == limit + 100 for piece in pieces)
        assert short_pieces == [short_doc[:]]


@pytest.mark.parametrize("remember", [False, True])
def test_wordpiece_encoder_matches_spacy_transformers(trained_nlp, remember):
    """The same wordpieces, alignment and vectors as spacy-transformers' own
    forward pass, for odd and long texts, when encoded and when remembered."""
    from spacy_transformers.layers.transformer_model import forward as spacy_transformers_forward

    model = trained_nlp.get_pipe("transformer").model
    texts = [t for t in ODD_TEXTS.values() if t.strip()] + ["IL-2 activates " + "." * 600 + " T cells"]
    docs = [trained_nlp.make_doc(text) for text in texts]
    for _ in range(2):  # the second time from the remembered encodings
        ours, _ = model._func(model, docs, remember)
        theirs, _ = spacy_transformers_forward(model, docs, False)
        assert ours.wordpieces.strings == theirs.wordpieces.strings
        assert ours.wordpieces.lengths == theirs.wordpieces.lengths
        numpy.testing.assert_array_equal(ours.wordpieces.input_ids, theirs.wordpieces.input_ids)
        numpy.testing.assert_array_equal(ours.wordpieces.attention_mask, theirs.wordpieces.attention_mask)
        numpy.testing.assert_array_equal(ours.align.data, theirs.align.data)
        numpy.testing.assert_array_equal(ours.align.lengths, theirs.align.lengths)
        if remember:
            continue  # remembering is for training, where dropout changes the vectors
        numpy.testing.assert_allclose(
            ours.model_output.last_hidden_state, theirs.model_output.last_hidden_state, atol=1e-6
        )


def test_window_longer_than_512_wordpieces(trained_nlp):
    text = "IL-2 activates " + "." * 2000 + " T cells"
    doc = trained_nlp(text)
    assert_faithful(doc, text)
    assert [(e.text, e.label_) for e in doc.ents] == [("IL-2", "protein"), ("T cells", "cell_type")]


def test_200k_character_document(trained_nlp):
    sentences = [SENTENCE, "5 µM ± 2\u00a0µg of α-IL-2 🧬", "IL-2\r\nactivates monocytes .\n"]
    parts, total = [], 0
    while total < 200_000:
        parts.append(sentences[len(parts) % 3])
        total += len(parts[-1]) + 1
    text = " ".join(parts)[:200_000]
    started = time.perf_counter()
    doc = trained_nlp(text)
    elapsed = time.perf_counter() - started
    assert_faithful(doc, text)
    print(f"200,000 characters, {len(doc):,} tokens: {elapsed:.1f} s")
    assert elapsed < 60
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


def test_pipe_batch_sizes_agree_with_one_by_one(trained_nlp):
    texts = list(ODD_TEXTS.values()) + [SENTENCE * 80, "the expression of " * 340 + "IL-2 activates T cells ."]
    one_by_one = [char_ents(trained_nlp(text)) for text in texts]
    assert sum(map(len, one_by_one)) > 100
    for batch_size in (1, 256):
        docs = list(trained_nlp.pipe(texts, batch_size=batch_size))
        assert [doc.text for doc in docs] == texts
        assert [char_ents(doc) for doc in docs] == one_by_one


# --- 3. training input --------------------------------------------------------

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


def test_training_on_awkward_docbin(tiny_bert, tmp_path, capsys):
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

    config = spacy.util.load_config_from_str(
        TRANSFORMER_PIPELINE_CONFIG.format(encoder=tiny_bert, crf="false") + BIO_TOKENIZER + TRAINING_CONFIG,
        overrides={"paths.train": str(tmp_path / "train.spacy")},
    )
    from spacy.training.initialize import init_nlp
    from spacy.training.loop import train

    fix_random_seed(0)
    config = spacy.util.load_model_from_config(config, auto_fill=True).config
    nlp = init_nlp(config)
    head = nlp.get_pipe("jnlpba")
    assert head.labels == ("cell_type", "protein")
    nlp, _ = train(nlp, None, stdout=sys.stdout, stderr=sys.stderr)
    out = " ".join(capsys.readouterr().out.split())  # wasabi wraps long lines
    assert "Chemical" not in head.labels
    warning = "gold entities labelled ['Chemical'] are not among this head's labels"
    assert out.count(warning) == 1, out  # reported once, not per step
    assert "treated as unannotated" in out
    # The unknown entity's tokens carry no gold tag; the rest do.
    example = Example(nlp.make_doc(unknown.text), unknown)
    gold = head._gold_tags(example, set())
    assert [head.tags[t] if t >= 0 else None for t in gold] == [
        None, "O", "B-protein", "I-protein", "I-protein"
    ]
    losses = nlp.update([Example(nlp.make_doc(long_doc.text), long_doc)], sgd=Adam(0.001))
    assert losses["jnlpba"] > 0


# --- 4. loading ----------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_pipeline(trained_nlp, tmp_path_factory):
    path = tmp_path_factory.mktemp("pipeline") / "trf"
    trained_nlp.to_disk(path)
    return path


def test_load_missing_directory(tmp_path):
    with pytest.raises(OSError, match=r"Can't find model directory: .*no-such-pipeline$"):
        spacy.load(tmp_path / "no-such-pipeline")


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
    assert "Re-download or retrain the pipeline" in message


def test_load_corrupted_head_from_bytes(trained_nlp):
    head = trained_nlp.get_pipe("jnlpba")
    data = head.to_bytes()
    clone = transformer_nlp(Path("unused")).get_pipe("jnlpba")
    with pytest.raises(ValueError, match="Cannot load the bio_ner component 'jnlpba' from bytes.*Re-download"):
        clone.from_bytes(data[: len(data) // 2])


ENCODER_ERRORS = [
    # name, fallback, expected message parts
    ("{tmp}/no-such-encoder", "", ["'{tmp}/no-such-encoder' is not a model directory", "--vars.transformer"]),
    ("{tmp}", "", ["no config.json", "--vars.transformer /path/to/model"]),
    ("no-such-org/no-such-encoder", "", ["reachable on the Hugging Face hub", "HF_HUB_OFFLINE=1", "--vars.transformer"]),
    ("{tmp}/no-such-encoder", "spacy-bioner-no-such-encoder", ["`pip install spacy-bioner-no-such-encoder`", "spacy-bioner[offline]"]),
    ("{tmp}/no-such-encoder", "{tmp}/no-such-fallback", ["fallback '{tmp}/no-such-fallback' is not a directory"]),
]


@pytest.mark.parametrize("name,fallback,expected", ENCODER_ERRORS)
def test_encoder_not_found(tmp_path, monkeypatch, name, fallback, expected):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never ask the hub
    name, fallback = name.format(tmp=tmp_path), fallback.format(tmp=tmp_path)
    config = TRANSFORMER_PIPELINE_CONFIG.format(encoder=name, crf="false").replace(
        'fallback = ""', f'fallback = "{fallback}"'
    )
    nlp = spacy.util.load_model_from_config(spacy.util.load_config_from_str(config), auto_fill=True)
    with pytest.raises(EncoderNotFound) as excinfo:
        nlp.initialize()
    message = str(excinfo.value)
    assert "\n" not in message
    for part in expected:
        assert part.format(tmp=tmp_path) in message
