"""The encoder, and its text as packed token sequences and masked batches."""

import contextlib
import hashlib
import itertools
import random
from collections.abc import Sequence as SequenceABC
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union, overload

import numpy as np
import torch

from ..messages import first_line
from .settings import HELDOUT_SEED, PretrainError, check_heldout_fraction

# The fewest tokens of text a packed sequence holds, besides the special tokens.
MIN_CONTENT_TOKENS = 8


class LoadedEncoder(NamedTuple):
    """An encoder ready for masked-LM training: `new_head` where it was saved without a
    masked-LM head, which then starts from random (its perplexity before training is the
    new head's, not the encoder's)."""

    tokenizer: Any
    model: Any
    new_head: bool


def load_encoder(name_or_path: str) -> LoadedEncoder:
    """The tokenizer and masked-LM model of `name_or_path`. An encoder saved
    without an MLM head gets a new one (`new_head`), whose decoder must be tied to the
    input embeddings (otherwise a whole vocabulary-sized matrix would start
    from random)."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError, TypeError) as err:  # a folder without tokenizer files: a TypeError
        raise PretrainError(f"encoder {name_or_path!r}: no tokenizer can be loaded (vocab.txt or "
                            f"tokenizer.json missing?): {type(err).__name__}: {first_line(err)}") from None
    if tokenizer.mask_token_id is None:
        raise PretrainError(f"encoder {name_or_path!r}: its tokenizer has no mask token")
    # The "newly initialized: cls.predictions..." warning is expected for a
    # bare encoder; the tie is checked below instead.
    try:
        with _transformers_quiet():
            model, loading = AutoModelForMaskedLM.from_pretrained(name_or_path, output_loading_info=True)
    except ValueError as err:  # no masked-LM class for this architecture
        raise PretrainError(f"encoder {name_or_path!r}: no masked-LM model: {err}") from None
    output_embeddings = model.get_output_embeddings()
    if output_embeddings is None or output_embeddings.weight is not model.get_input_embeddings().weight:
        raise PretrainError(
            f"encoder {name_or_path!r}: the masked-LM decoder is not tied to the input embeddings "
            "(tie_word_embeddings is false in its config)"
        )
    # A bare encoder in a masked-LM class misses the head's weights alone (its pooler is unexpected).
    return LoadedEncoder(tokenizer, model, new_head=bool(loading["missing_keys"]))


def save_encoder(model: Any, base: str, output: Path) -> None:
    """Save the adapted masked-LM `model` to `output` with the weights of its base encoder
    `base` that a masked-LM class leaves out (BERT's pooler): without them, loading the
    output as an encoder (spacy-transformers' AutoModel) warned that they were "newly
    initialized" and that the model should be trained. The encoder reads no pooler.
    Loaded as a masked-LM model by transformers, the output names them unused."""
    from transformers import AutoModel

    with _transformers_quiet():
        base_model, loading = AutoModel.from_pretrained(base, output_loading_info=True)
    # Not those the base lacks too (RoBERTa's pooler; a masked-LM checkpoint's): they would be random.
    absent = set(loading["missing_keys"]) | set(model.base_model.state_dict())
    left_out = {f"{model.base_model_prefix}.{name}": weight for name, weight in base_model.state_dict().items()
                if name not in absent}
    model.save_pretrained(output, state_dict={**model.state_dict(), **left_out})


@contextlib.contextmanager
def _transformers_quiet() -> Iterator[None]:
    """transformers' log at errors only, for loads whose warnings are expected."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)


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
    # Imported here, as in training._bf16: the layers import spacy-transformers, seconds of
    # start-up for every command of the CLI, which imports this package for pretrain's options.
    from ..layers.windows import max_positions

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
