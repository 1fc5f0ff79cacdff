"""The dev split: the last N documents of a training file are dev, and a bad N
is an error, never a split that trains or evaluates on the wrong documents."""

from pathlib import Path

import pytest
import spacy
from spacy.util import load_config_from_str

from spacy_bioner.corpora import DevSplitError, split_dev, split_dev_as_read

NLP = spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": "spacy_bioner.BioTokenizer.v1"}}})


def test_split_dev_holds_out_the_last_n():
    docs = list("abcde")
    assert split_dev(docs, 2) == (list("abc"), list("de"))
    assert split_dev(docs, 4) == (list("a"), list("bcde"))


@pytest.mark.parametrize(
    "dev_docs,problem",
    [(0, "no dev documents"), (-1, "no dev documents"), (5, "no training"), (6, "no training")],
)
def test_split_dev_rejects_an_empty_part(dev_docs, problem):
    with pytest.raises(ValueError, match=problem) as err:
        split_dev(list("abcde"), dev_docs)
    assert "dev_docs" in str(err.value) and "from 1 to 4" in str(err.value)


def test_a_split_as_read_holds_only_the_last_n_and_is_split_dev():
    read = []

    def docs():
        for doc in "abcde":
            read.append(doc)
            yield doc

    parts = split_dev_as_read(docs(), 2)
    # "a" is training once "c" is read: no more than the last two and the one read are held.
    assert next(parts) == (False, "a") and read == list("abc")
    rest = list(parts)
    assert ([doc for is_dev, doc in [(False, "a")] + rest if not is_dev],
            [doc for is_dev, doc in rest if is_dev]) == split_dev(list("abcde"), 2)
    assert list(split_dev_as_read(iter("ab"), 0)) == [(False, "a"), (False, "b")]  # 0: no split
    with pytest.raises(DevSplitError, match="--dev-docs 5 leaves no training documents .5 in all.: set --dev-docs"):
        list(split_dev_as_read(iter("abcde"), 5, name="--dev-docs"))


def test_split_dev_names_the_setting():
    with pytest.raises(ValueError, match="--dev-docs 1 leaves no training documents"):
        split_dev(["a"], 1, name="--dev-docs")


@pytest.fixture(scope="module")
def jnlpba_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three abstracts: pmids 1, 2 and 3."""
    path = tmp_path_factory.mktemp("jnlpba") / "train.iob2"
    path.write_text(
        "".join(f"###MEDLINE:{i}\n\nIL-{i}\tB-protein\nbinds\tO\n.\tO\n\n" for i in (1, 2, 3)),
        encoding="utf8",
    )
    return path


def pmids(reader) -> list:
    return [eg.reference.user_data["pmid"] for eg in reader(NLP)]


def jnlpba_reader(path: Path, **kwargs):
    return spacy.registry.readers.get("spacy_bioner.JNLPBA.v1")(str(path), **kwargs)


def test_jnlpba_reader_split(jnlpba_file):
    assert pmids(jnlpba_reader(jnlpba_file, dev_docs=1, part="train")) == ["1", "2"]
    assert pmids(jnlpba_reader(jnlpba_file, dev_docs=1, part="dev")) == ["3"]
    # part="all" needs no dev_docs and ignores it.
    assert pmids(jnlpba_reader(jnlpba_file)) == ["1", "2", "3"]
    assert pmids(jnlpba_reader(jnlpba_file, dev_docs=5000, part="all")) == ["1", "2", "3"]


@pytest.mark.parametrize("part", ["train", "dev"])
@pytest.mark.parametrize("dev_docs", [0, -1])
def test_jnlpba_reader_needs_dev_docs_for_a_part(jnlpba_file, part, dev_docs):
    """Without dev_docs, part="dev" used to be every training abstract."""
    with pytest.raises(ValueError, match=f"part={part!r} needs dev_docs.*got {dev_docs}"):
        jnlpba_reader(jnlpba_file, dev_docs=dev_docs, part=part)


@pytest.mark.parametrize("part", ["train", "dev"])
@pytest.mark.parametrize("dev_docs", [3, 5000])
def test_jnlpba_reader_rejects_dev_docs_beyond_the_file(jnlpba_file, part, dev_docs):
    """dev_docs=5000 used to give train=[] and dev=every abstract."""
    reader = jnlpba_reader(jnlpba_file, dev_docs=dev_docs, part=part)
    message = f"{jnlpba_file}: dev_docs {dev_docs} leaves no training.*from 1 to 2"
    with pytest.raises(ValueError, match=message):
        list(reader(NLP))


def test_training_config_without_dev_docs_fails(jnlpba_file):
    """A config that leaves out dev_docs fails when resolved, not by evaluating
    on the training data."""
    config = load_config_from_str(
        f"""
        [corpora]
        [corpora.dev]
        @readers = "spacy_bioner.JNLPBA.v1"
        path = "{jnlpba_file}"
        part = "dev"
        """
    )
    with pytest.raises(ValueError, match="needs dev_docs"):
        spacy.registry.resolve(config)
