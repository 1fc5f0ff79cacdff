"""Shared fixtures: a tiny random BERT and small pipelines built on it.

Nothing is downloaded: the BERT is built from a config with a vocabulary of
the toy words (tests/toy.py), and every pipeline is trained for a few steps
on the toy corpus.
"""

from pathlib import Path

import pytest
from spacy.language import Language
from thinc.api import fix_random_seed
from toy import (
    BC5CDR_IOB,
    JNLPBA_TEST,
    PUBTATOR,
    make_tiny_bert,
    toy_docs,
    train_two_heads,
    transformer_pipeline,
)

from spacy_bioner.corpora import read_iob, read_jnlpba, read_pubtator_texts, write_docbin
from spacy_bioner.tokenizer import make_bio_nlp


@pytest.fixture(autouse=True)
def seeded_random_state() -> None:
    """Each test starts from the same random state (Python's, NumPy's, torch's), set after the session
    fixtures it uses are built: what it draws does not depend on which tests ran before it."""
    fix_random_seed(0)


@pytest.fixture(scope="session")
def bio_nlp() -> Language:
    """The package's blank pipeline with the biomedical tokenizer (no components).

    Shared by the whole session: tests only tokenize with it and read
    corpora into its vocab, which changes nothing another test sees."""
    return make_bio_nlp()


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved 2-layer, 32-wide random BERT with a fast WordPiece tokenizer."""
    fix_random_seed(0)  # the same weights whichever test asks first
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved pipeline: the tiny transformer and two CRF heads ("jnlpba", "bc5cdr"),
    trained 20 steps on the toy corpus, so that it finds entities."""
    fix_random_seed(0)
    nlp = train_two_heads(transformer_pipeline(tiny_bert, heads=("jnlpba", "bc5cdr")))
    path = tmp_path_factory.mktemp("tiny-pipeline") / "model"
    nlp.to_disk(path)
    return path


@pytest.fixture(scope="session")
def corpus_root(bio_nlp: Language, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A benchmark corpus root as benchmarks/ converts it (jnlpba/ and
    bc5cdr-iob/), with three real documents per split."""
    root = tmp_path_factory.mktemp("benchmark-corpus")
    vocab = bio_nlp.vocab
    jnlpba, _ = read_jnlpba(JNLPBA_TEST, vocab)
    abstracts = read_pubtator_texts(PUBTATOR["test"])
    bc5cdr, _ = read_iob(BC5CDR_IOB["test"], vocab, spans_key="bc5cdr", documents=abstracts)
    for name, docs in (("jnlpba", jnlpba), ("bc5cdr-iob", bc5cdr)):
        for i, split in enumerate(("train", "dev", "test")):
            write_docbin(docs[3 * i : 3 * i + 3], root / name / f"{split}.spacy")
    return root


@pytest.fixture(scope="session")
def toy_corpus_root(bio_nlp: Language, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A benchmark corpus root (jnlpba/ and bc5cdr-iob/) of toy sentences, which a few steps on the
    tiny BERT learn: scores above 0 for the tests a real corpus would leave at 0. Their gold tokens
    ("IL-2") are not the pipeline's tokenizer's ("IL", "-", "2")."""
    root = tmp_path_factory.mktemp("toy-corpus")
    for name, spans_key in (("jnlpba", "jnlpba"), ("bc5cdr-iob", "bc5cdr")):
        for seed, (split, n) in enumerate((("train", 60), ("dev", 20), ("test", 20))):
            write_docbin(toy_docs(bio_nlp.vocab, n, spans_key, seed), root / name / f"{split}.spacy")
    return root
