"""A toy corpus and a tiny random BERT, shared by the component tests.

The BERT is built from a config with a vocabulary of the toy words: nothing
is downloaded.
"""

import copy
import json
import lzma
import os
import random
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.vocab import Vocab

PROTEINS = [["IL-2"], ["NF-kappa", "B"], ["p53"], ["c-Rel"]]
CELLS = [["T", "cells"], ["monocytes"], ["B", "lymphocytes"]]
FILLER = ["the", "activates", "in", "expression", "of", "was", "induced", "by", "human"]


def toy_sentences(n: int, seed: int = 0) -> List[Tuple[List[str], List[Tuple[int, int, str]]]]:
    """Sentences like 'the p53 expression in T cells was induced by IL-2'."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(n):
        words: List[str] = []
        ents = []
        for _ in range(rng.randint(2, 4)):
            words.extend(rng.sample(FILLER, rng.randint(1, 2)))
            label, options = rng.choice([("protein", PROTEINS), ("cell_type", CELLS)])
            mention = rng.choice(options)
            ents.append((len(words), len(words) + len(mention), label))
            words.extend(mention)
        words.append(rng.choice(FILLER))
        sentences.append((words, ents))
    return sentences


def toy_docs(vocab: Vocab, n: int = 40, spans_key: str = "jnlpba", seed: int = 0) -> List[Doc]:
    """`toy_sentences` as gold documents: entities in doc.ents and in the `spans_key` group."""
    docs = []
    for words, ents in toy_sentences(n, seed):
        doc = Doc(vocab, words=words)
        spans = [Span(doc, s, e, label=label) for s, e, label in ents]
        doc.ents = spans
        doc.spans[spans_key] = spans
        docs.append(doc)
    return docs


def toy_examples(nlp: Language, n: int = 40, spans_key: str = "jnlpba", seed: int = 0) -> List[Example]:
    return [Example(Doc(nlp.vocab, words=[t.text for t in reference]), reference)
            for reference in toy_docs(nlp.vocab, n, spans_key, seed)]


def all_words() -> List[str]:
    words = set(FILLER)
    for mention in PROTEINS + CELLS:
        words.update(mention)
    return sorted(words)


# The tiny encoders' shape: 2 layers, 32 wide.
TINY_ENCODER_SIZES = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)


def make_tiny_bert(path: Path, extra_words: List[str] = ()) -> Path:
    """Save a randomly initialised 2-layer BERT and its WordPiece vocab."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    pieces = set()
    for word in list(all_words()) + list(extra_words):
        for piece in word.replace("-", " - ").split():
            pieces.add(piece)
            pieces.add(piece.lower())
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "-"] + sorted(pieces - {"-"})
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf8")
    tokenizer = BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=False)
    # No model_max_length: like SciBERT's hub tokenizer, it then reports a huge default, and
    # the encoder's limit is its max_position_embeddings alone.
    tokenizer.save_pretrained(str(path))
    config = BertConfig(
        vocab_size=len(vocab),
        **TINY_ENCODER_SIZES,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(str(path))
    return path


def make_tiny_roberta(path: Path, max_position_embeddings: int) -> Path:
    """A saved random 2-layer RoBERTa and a byte-level BPE trained on the toy
    words; like many hub RoBERTas, its tokenizer sets no model_max_length."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe.train_from_iterator([" ".join(all_words())] * 5, vocab_size=300, min_frequency=1, special_tokens=special)
    bpe.save_model(str(path))
    tokenizer = RobertaTokenizerFast(vocab_file=str(path / "vocab.json"), merges_file=str(path / "merges.txt"))
    tokenizer.save_pretrained(str(path))
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        **TINY_ENCODER_SIZES,
        max_position_embeddings=max_position_embeddings,
        pad_token_id=tokenizer.pad_token_id,
    )
    RobertaModel(config).save_pretrained(str(path))
    return path


_TRANSFORMER_PIPELINE_CONFIG = """
[nlp]
lang = "en"
pipeline = ["transformer", "jnlpba"]

[components]

[components.transformer]
factory = "transformer"

[components.transformer.model]
@architectures = "spacy_bioner.Transformer.v5"
name = "{encoder}"
fallback = ""

[components.transformer.model.get_spans]
@span_getters = "spacy_bioner.strided_spans.v1"
window = 16
stride = 12

[components.jnlpba]
factory = "bio_ner"
spans_key = "jnlpba"

[components.jnlpba.model]
@architectures = "spacy_bioner.TokenTagger.v3"
crf = {crf}

[components.jnlpba.loss]
@losses = "{loss}"

[components.jnlpba.model.tok2vec]
@architectures = "spacy-transformers.TransformerListener.v1"
grad_factor = 1.0
upstream = "transformer"

[components.jnlpba.model.tok2vec.pooling]
@layers = "reduce_mean.v1"
"""


def transformer_pipeline_config(encoder, crf: bool = True) -> str:
    """The config of a tiny transformer pipeline with one head, "jnlpba"."""
    loss = "spacy_bioner.CRFLoss.v1" if crf else "spacy_bioner.ClassWeightedCrossentropy.v1"
    return _TRANSFORMER_PIPELINE_CONFIG.format(encoder=encoder, crf=str(crf).lower(), loss=loss)


def train(nlp: Language, examples: List[Example], steps: int, learn_rate: float = 0.01) -> Language:
    """Initialise `nlp` on `examples`, then `steps` Adam updates on all of them."""
    from thinc.api import Adam

    nlp.initialize(lambda: examples)
    optimizer = Adam(learn_rate)
    for _ in range(steps):
        nlp.update(examples, sgd=optimizer)
    return nlp


def train_two_heads(nlp: Language, n: int = 20, steps: int = 20, learn_rate: float = 0.005) -> Language:
    """Initialise and train the "jnlpba" and "bc5cdr" heads of `nlp` on toy examples."""
    examples = toy_examples(nlp, n, spans_key="jnlpba") + toy_examples(nlp, n, spans_key="bc5cdr", seed=1)
    return train(nlp, examples, steps, learn_rate)


ROOT = Path(__file__).resolve().parent.parent  # the repository
ASSETS = ROOT / "assets"
JNLPBA_TRAIN = ASSETS / "jnlpba" / "Genia4ERtask2.iob2.xz"
JNLPBA_TEST = ASSETS / "jnlpba" / "Genia4EReval2.iob2.xz"
PUBTATOR = {
    split: ASSETS / "bc5cdr" / "pubtator" / f"CDR_{name}.PubTator.txt.xz"
    for split, name in [("train", "TrainingSet"), ("dev", "DevelopmentSet"), ("test", "TestSet")]
}
BC5CDR_IOB = {split: ASSETS / "bc5cdr" / "iob" / f"{split}.tsv.xz" for split in ("train", "devel", "test")}
# PubMed samples: a baseline file (30 records, one without text) and an update file (30 records, 6 deletions).
PUBMED_BASELINE = ASSETS / "pubmed" / "pubmed26n1334.xml.gz"
PUBMED_UPDATE = ASSETS / "pubmed" / "pubmed26n1335.xml.gz"


def iob_sentences(path: Path) -> List[List[Tuple[str, str]]]:
    """The (token, tag) sentences of an IOB file, read independently of read_iob."""
    sentences, sent = [], []
    for line in lzma.open(path, "rt", encoding="utf8"):
        line = line.rstrip("\n")
        if not line or line.startswith("###MEDLINE:"):
            if sent:
                sentences.append(sent)
                sent = []
            continue
        token, tag = line.split("\t")
        sent.append((token, tag))
    if sent:
        sentences.append(sent)
    return sentences


def transformer_pipeline(
    encoder: Path, crf: bool = True, heads=("jnlpba",), settings: Optional[Dict[str, Any]] = None, extra_config: str = ""
) -> Language:
    """A blank pipeline: the tiny transformer and one bio_ner head per key in `heads`.

    `extra_config` is appended to the config text (more sections); `settings`
    sets config values by dotted path, e.g. {"components.jnlpba.learn_rate_scale": 10}
    (a dict value replaces the whole section), those of any head in `heads`.
    """
    import spacy

    config = spacy.util.load_config_from_str(transformer_pipeline_config(encoder, crf) + extra_config)
    for key in heads:
        if key not in config["components"]:
            config["components"][key] = copy.deepcopy(config["components"]["jnlpba"])
            config["components"][key]["spans_key"] = key
            config["nlp"]["pipeline"].append(key)
    for dotted, value in (settings or {}).items():
        *sections, key = dotted.split(".")
        section = config
        for name in sections:
            section = section.setdefault(name, {})
        section[key] = value
    return spacy.util.load_model_from_config(config, auto_fill=True, validate=True)


# A small, fast tok2vec for heads that need no transformer.
SMALL_TOK2VEC = {
    "@architectures": "spacy.HashEmbedCNN.v2",
    "width": 64,
    "depth": 2,
    "embed_size": 500,
    "window_size": 1,
    "maxout_pieces": 2,
    "subword_features": True,
    "pretrained_vectors": None,
}


def toy_abstracts(n: int, seed: int = 0, sentences: int = 3) -> List[str]:
    """`n` toy abstracts of `sentences` toy sentences each (words the tiny pipeline knows)."""
    lines = [" ".join(words) + " ." for words, _ in toy_sentences(sentences * n, seed)]
    return [" ".join(lines[sentences * i : sentences * (i + 1)]) for i in range(n)]


def assert_help_explains_every_option(app, command: str) -> None:
    """`command --help` shows every argument and option of `command` with its
    help text, whole (wide enough that rich cuts nothing)."""
    import re

    import typer
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "250", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    shown = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())  # rich's boxes, lines joined
    for param in typer.main.get_command(app).commands[command].params:
        explained = " ".join((param.help or "").replace("\\[", "[").split())
        assert len(explained.split()) >= 3, f"{param.opts}: no help text"
        assert explained in shown, param.opts
        assert param.param_type_name == "argument" or param.opts[0] in shown, param.opts


def write_jsonl(path: Path, rows: Iterable[dict], extra: str = "") -> Path:
    """One JSON object per line, then `extra` verbatim (e.g. broken lines)."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows) + extra, encoding="utf8")
    return path


def write_texts(path: Path, texts: Iterable[str], extra: str = "") -> Path:
    """An `annotate` input: {"id": "toy<i>", "text": ...} per line, then `extra` verbatim."""
    return write_jsonl(path, ({"id": f"toy{i}", "text": text} for i, text in enumerate(texts)), extra)


@contextmanager
def piped(folder: Path, data: bytes, name: str = "pipe") -> Iterator[Path]:
    """A named pipe that a thread writes `data` into, its first bytes one at a time, as a slow
    `zcat` would: the path a shell's `<(zcat file.gz)` or /dev/stdin gives. A reader that opens
    it again is given an end of file, not left waiting for a writer that is gone."""
    fifo = folder / name
    os.mkfifo(fifo)
    done = threading.Event()

    def feed() -> None:
        try:
            with open(fifo, "wb", buffering=0) as f:
                for byte in data[:8]:
                    f.write(bytes([byte]))
                f.write(data[8:])
        except BrokenPipeError:  # the reader stopped reading
            return
        while not done.wait(0.05):
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:  # ENXIO: no reader waits
                pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        yield fifo
    finally:
        done.set()
        if writer.is_alive():  # the pipe was never opened: open it, so that the writer's open returns
            reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            writer.join(timeout=10)
            os.close(reader)
