"""Domain-adaptive pretraining (`python -m spacy_bioner pretrain`), on the
tiny random BERT: nothing is downloaded, nothing is mocked."""

import bisect
import gc
import gzip
import hashlib
import itertools
import json
import math
import os
import random
import re
import shutil
import tracemalloc
import warnings
from pathlib import Path
from typing import Dict, List, Sequence, Set, Tuple

import numpy as np
import pytest
import torch
import typer
from spacy.language import Language
from spacy.schemas import ModelMetaSchema, validate
from thinc.api import Adam, fix_random_seed
from toy import (
    BC5CDR_IOB,
    FILLER,
    JNLPBA_TEST,
    PUBTATOR,
    ROOT,
    assert_help_explains_every_option,
    make_tiny_bert,
    make_tiny_roberta,
    toy_examples,
    toy_sentences,
    transformer_pipeline,
)
from typer.testing import CliRunner

from spacy_bioner.cli import app
from spacy_bioner.files import exclusive_folder
from spacy_bioner.packaging import PRETRAINING_META_KEY
from spacy_bioner.corpora import JNLPBA_DEV_DOCS
from spacy_bioner.pretraining import (
    BC5CDR_TRAIN,
    CHECKPOINT_DIR,
    CHECKPOINT_TMP,
    DATA_FINGERPRINT,
    DEFAULT_ASSETS,
    DEFAULT_TEXT,
    JNLPBA_TRAIN,
    RESULTS_FILE,
    RUN_MARKER,
    EvaluationText,
    OtherRun,
    PackedSequences,
    PretrainError,
    PretrainSettings,
    PretrainText,
    check_output_dir,
    fingerprint,
    load_encoder,
    masked_lm_loss,
    pack_sequences,
    pretrain,
    read_eval_sources,
    read_text_file,
    task_training_text,
    total_steps,
)
from spacy_bioner.pretraining.evaluation_text import EvalSource

runner = CliRunner()


def toy_text(n: int = 200) -> List[str]:
    """Repetitive sentences in the tiny BERT's vocabulary: easy to learn."""
    return [" ".join(words) for words, _ in toy_sentences(n, seed=3)]


def settings(encoder: Path, **overrides) -> PretrainSettings:
    values = dict(
        encoder=str(encoder), max_length=32, batch_size=8, steps=6, learn_rate=1e-3, warmup=0.1,
        heldout_fraction=0.1, checkpoint_every=2,
    )
    values.update(overrides)
    return PretrainSettings(**values)


def run(encoder: Path, output: Path, **kwargs) -> Dict:
    options = {k: kwargs.pop(k) for k in list(kwargs) if k in ("resume", "stop_at_step")}
    # An iterator, as the command line passes: the text is read once.
    return pretrain(settings(encoder, **kwargs), iter(toy_text()), output, progress=False, log=lambda _: None,
                    **options)


@pytest.fixture(scope="module")
def adapted(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT after a few masked-LM steps."""
    output = tmp_path_factory.mktemp("adapted") / "encoder"
    run(tiny_bert, output)
    return output


def test_new_mlm_head_is_tied_to_the_input_embeddings(tiny_bert: Path, adapted: Path) -> None:
    # The tiny BERT is a bare BertModel: the MLM head is new.
    tokenizer, model, new_head = load_encoder(str(tiny_bert))
    assert new_head and type(model).__name__ == "BertForMaskedLM"
    # The perplexity before training is the new head's, and the results say so; an adapted
    # encoder is saved with its head.
    results = json.loads((adapted / RESULTS_FILE).read_text(encoding="utf8"))
    assert results["heldout"]["before"]["new_head"] is True
    assert not load_encoder(str(adapted)).new_head
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert tokenizer.mask_token_id is not None


@pytest.mark.parametrize("architecture", ["bert", "roberta", "distilbert"])
def test_masked_lm_loss_equals_the_models_own(architecture: str) -> None:
    # BERT and RoBERTa take the masked-positions-only path; DistilBERT falls back.
    from transformers import AutoConfig, AutoModelForMaskedLM

    torch.manual_seed(0)
    sizes = dict(vocab_size=60, max_position_embeddings=40)
    if architecture == "distilbert":
        sizes.update(dim=32, n_layers=1, n_heads=2, hidden_dim=37)
    else:
        sizes.update(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37)
    model = AutoModelForMaskedLM.from_config(AutoConfig.for_model(architecture, **sizes)).eval()
    input_ids = torch.randint(5, 60, (3, 12))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[2, 8:] = 0
    labels = torch.full_like(input_ids, -100)
    labels[0, 3], labels[1, 0], labels[1, 7], labels[2, 5] = 7, 8, 9, 10
    batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
    with torch.no_grad():
        torch.testing.assert_close(masked_lm_loss(model, batch, torch.device("cpu")), model(**batch).loss)


def test_masked_lm_loss_reads_nothing_back_from_the_device() -> None:
    # On the meta device a tensor has no data: reading one (bool(), float(), a boolean index)
    # raises, as waiting for the GPU would show on one. Eager attention: SDPA's mask check reads one.
    from transformers import AutoConfig, AutoModelForMaskedLM

    config = AutoConfig.for_model("bert", vocab_size=60, max_position_embeddings=40, hidden_size=32,
                                  num_hidden_layers=1, num_attention_heads=2, intermediate_size=37)
    model = AutoModelForMaskedLM.from_config(config, attn_implementation="eager").to("meta")
    input_ids = torch.randint(5, 60, (2, 12))
    labels = torch.full_like(input_ids, -100)
    labels[0, 3], labels[1, 7] = 7, 9
    batch = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": labels}
    loss = masked_lm_loss(model, batch, torch.device("meta"))
    assert loss.device.type == "meta" and loss.shape == ()


def assert_packed_by_lines(sequences: List[List[int]], lines: Sequence[str], tokenizer, max_length: int) -> None:
    """Each block is [CLS] content [SEP]; the blocks' contents, read in order,
    are the lines' tokens with exactly one separator between two lines inside a
    block and none at a block's edge; every block but the last is full, or one
    token short where its last line ends on the last-but-one slot."""
    sep = tokenizer.sep_token_id
    line_ids = [ids for ids in (tokenizer(line, add_special_tokens=False)["input_ids"] for line in lines) if ids]
    line, offset = 0, 0  # where the next content token should come from
    for n, ids in enumerate(sequences):
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == sep
        parts: List[List[int]] = [[]]
        for token in ids[1:-1]:
            if token == sep:
                parts.append([])
            else:
                parts[-1].append(token)
        assert all(parts), f"block {n} starts or ends on a separator, or holds two in a row"
        for k, part in enumerate(parts):
            if k:
                assert offset == 0, f"block {n}: a separator inside line {line}"
            assert part == line_ids[line][offset : offset + len(part)], f"block {n}: line {line} glued to the next"
            offset += len(part)
            if offset == len(line_ids[line]):
                line, offset = line + 1, 0
        if n < len(sequences) - 1:
            assert len(ids) == max_length or (len(ids) == max_length - 1 and offset == 0), f"block {n} not full"
    assert (line, offset) == (len(line_ids), 0)  # every token of every line, once


@pytest.mark.parametrize("max_length", [10, 11, 12, 13, 20])
def test_pack_sequences_keeps_the_stream_in_full_blocks(tiny_bert: Path, max_length: int) -> None:
    tokenizer = load_encoder(str(tiny_bert)).tokenizer
    lines = toy_text(50)
    sequences = pack_sequences(lines, tokenizer, max_length=max_length)
    assert all(len(ids) <= max_length for ids in sequences)
    assert sum(len(ids) < max_length for ids in sequences[:-1]) < len(sequences) // 4  # mostly full
    content = [t for ids in sequences for t in ids[1:-1] if t != tokenizer.sep_token_id]
    expected = [t for line in lines for t in tokenizer(line, add_special_tokens=False)["input_ids"]]
    assert content == expected
    assert_packed_by_lines(sequences, lines, tokenizer, max_length)


def test_pack_sequences_never_joins_two_lines(tiny_bert: Path) -> None:
    # 8 content slots: the first line ends on the 7th, where only its separator would fit.
    tokenizer = load_encoder(str(tiny_bert)).tokenizer
    lines = [" ".join(["the"] * 7), "p53 p53 p53", "in in"]
    sequences = pack_sequences(lines, tokenizer, max_length=10)
    tokens = [tokenizer.convert_ids_to_tokens(ids) for ids in sequences]
    assert tokens == [
        ["[CLS]"] + ["the"] * 7 + ["[SEP]"],
        ["[CLS]", "p53", "p53", "p53", "[SEP]", "in", "in", "[SEP]"],
    ]
    assert_packed_by_lines(sequences, lines, tokenizer, 10)


def test_packed_sequences_take_about_four_bytes_a_token(tiny_bert: Path) -> None:
    """Held as int32 arrays, not lists of Python ints (~40 bytes a token)."""
    tokenizer = load_encoder(str(tiny_bert)).tokenizer
    lines = toy_text(6000)
    pack_sequences(lines[:10], tokenizer, 32)  # whatever the first call sets up is not counted
    tracemalloc.start()
    try:
        sequences = pack_sequences(lines, tokenizer, 32)
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()  # 4 bytes a token, and some fixed costs
    finally:
        tracemalloc.stop()
    n_tokens = sum(len(ids) for ids in sequences)
    assert n_tokens > 80_000 and held / n_tokens < 6


def test_packed_sequences_read_and_hash_as_lists() -> None:
    """Their fingerprint is the one checkpoints recorded (each length, then the int64 ids),
    across the chunks it is computed in."""
    rng = random.Random(0)
    lists = [[rng.randrange(30_000) for _ in range(rng.randint(1, 5))] for _ in range(70_000)]
    packed = PackedSequences.from_lists(lists)
    digest = hashlib.sha256()
    for ids in lists:
        digest.update(len(ids).to_bytes(4, "little"))
        digest.update(torch.tensor(ids, dtype=torch.int64).numpy().tobytes())
    assert fingerprint(packed) == digest.hexdigest()
    assert len(packed) == len(lists) and packed[-1] == lists[-1] and packed[3:7] == lists[3:7]
    assert list(packed.select([5, 2])) == [lists[5], lists[2]] and len(packed.select([])) == 0
    assert list(PackedSequences.concatenate([packed.select([1]), packed.select([]), packed.select([0])])) == [
        lists[1], lists[0]]


def test_the_text_is_read_as_it_is_packed(tiny_bert: Path, tmp_path: Path) -> None:
    """The command line's text is never in memory whole: a file is read as its lines are packed,
    the next one once it is done; the sources' line counts are complete at the end."""
    tokenizer = load_encoder(str(tiny_bert)).tokenizer
    lines = toy_text(50)
    first, second = tmp_path / "first.txt", tmp_path / "second.txt.gz"
    first.write_text("\n".join(lines[:20]) + "\n\n", encoding="utf8")
    second.write_bytes(gzip.compress("\n".join(lines[20:]).encode("utf8")))
    text = PretrainText([first, second], include_task_text=False)
    reading = iter(text)
    assert next(reading) == lines[0] and [source["path"] for source in text.sources] == [str(first)]
    assert list(itertools.islice(reading, 19)) == lines[1:20] and len(text.sources) == 1
    second_md5 = hashlib.md5(second.read_bytes()).hexdigest()
    expected = list(pack_sequences(lines, tokenizer, 32))
    assert list(pack_sequences(itertools.chain(lines[:20], reading), tokenizer, 32)) == expected
    assert [(source["lines"], source.get("md5")) for source in text.sources] == [
        (20, hashlib.md5(first.read_bytes()).hexdigest()), (30, second_md5)]
    with pytest.raises(RuntimeError, match="read once"):
        iter(text).__next__()


def test_one_long_line_is_cut_into_full_blocks(tiny_bert: Path) -> None:
    """A line far longer than a block (a file without newlines) fills block after block."""
    tokenizer = load_encoder(str(tiny_bert)).tokenizer
    line = " ".join([" ".join(FILLER)] * 2_000)
    sequences = list(pack_sequences([line], tokenizer, 10))
    assert len(sequences) > 100 and all(len(ids) == 10 for ids in sequences[:-1])
    assert_packed_by_lines(sequences, [line], tokenizer, 10)


def test_read_text_file_reads_the_embedded_collection() -> None:
    lines = read_text_file(ROOT / DEFAULT_TEXT)
    assert len(lines) == 71490
    assert sum(len(line.split()) for line in lines) == 2040264


@pytest.mark.slow
def test_heldout_loss_decreases(tiny_bert: Path, tmp_path: Path) -> None:
    results = run(tiny_bert, tmp_path / "out", steps=40, checkpoint_every=100)
    before, after = results["heldout"]["before"], results["heldout"]["after"]
    assert before["masked_tokens"] == after["masked_tokens"] > 0  # the same fixed masking
    assert after["loss"] < before["loss"]
    assert results["steps"] == 40 and results["tokens_seen"] > 0


@pytest.mark.slow
def test_whole_word_masking_trains(tiny_bert: Path, tmp_path: Path) -> None:
    results = run(tiny_bert, tmp_path / "out", steps=3, whole_word_mask=True)
    assert results["complete"] and results["heldout"]["after"]["masked_tokens"] > 0


def word_starts(tokens: Sequence[str]) -> List[int]:
    """Per token, the index of the piece its word starts at ("##" continues a
    word), -1 for the special tokens."""
    starts: List[int] = []
    for i, token in enumerate(tokens):
        if token in ("[CLS]", "[SEP]", "[PAD]"):
            starts.append(-1)
        elif token.startswith("##") and i and starts[-1] >= 0:
            starts.append(starts[-1])
        else:
            starts.append(i)
    return starts


def test_whole_word_masking_masks_every_piece_of_a_word_or_none(tmp_path: Path) -> None:
    from spacy_bioner.pretraining import Batcher, MaskingRNG

    stems, endings = ["alpha", "beta", "gamma"], ["##ase", "##ine", "##ol"]
    bert = make_tiny_bert(tmp_path / "bert", extra_words=stems + endings)
    tokenizer = load_encoder(str(bert)).tokenizer
    rng = random.Random(0)
    words = FILLER + [stem + ending[2:] for stem in stems for ending in endings]  # e.g. alphaase: alpha ##ase
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(4, 12))) for _ in range(200)]
    sequences = pack_sequences(lines, tokenizer, max_length=32)

    def split_words(whole_word_mask: bool) -> Tuple[int, int]:
        """(multi-piece words masked in full, multi-piece words masked in part)."""
        batch = Batcher(tokenizer, whole_word_mask, 0.15)(sequences, MaskingRNG(0))
        full = partial = 0
        for ids, labels in zip(sequences, batch["labels"].tolist()):
            groups: Dict[int, List[bool]] = {}
            for i, start in enumerate(word_starts(tokenizer.convert_ids_to_tokens(ids))):
                if start >= 0:
                    groups.setdefault(start, []).append(labels[i] != -100)
            for masked in groups.values():
                if len(masked) > 1 and any(masked):
                    full, partial = (full + 1, partial) if all(masked) else (full, partial + 1)
        return full, partial

    assert any(t.startswith("##") for ids in sequences for t in tokenizer.convert_ids_to_tokens(ids))
    full, partial = split_words(whole_word_mask=True)
    assert full > 20 and partial == 0
    # The vocabulary tells the two apart: masking single pieces splits words.
    assert split_words(whole_word_mask=False)[1] > 0


def test_held_out_masking_does_not_depend_on_the_batch_size(tmp_path: Path) -> None:
    from transformers import AutoModelForMaskedLM

    from spacy_bioner.pretraining import Batcher, evaluate_mlm

    bert = make_tiny_bert(tmp_path / "bert")
    tokenizer = load_encoder(str(bert)).tokenizer
    model = AutoModelForMaskedLM.from_pretrained(str(bert))
    rng = random.Random(0)
    lines = [" ".join(rng.choice(FILLER) for _ in range(rng.randint(4, 30))) for _ in range(40)]
    sequences = pack_sequences(lines, tokenizer, max_length=24)
    assert len({len(ids) for ids in sequences}) > 1  # batches are padded
    batcher = Batcher(tokenizer, False, 0.15)
    whole = batcher.each_masked_alone(sequences, 7)
    pairs = batcher.each_masked_alone(sequences[:2], 7), batcher.each_masked_alone(sequences[2:4], 9)
    for i, (batch, row) in enumerate([(pairs[0], 0), (pairs[0], 1), (pairs[1], 0), (pairs[1], 1)]):
        n = len(sequences[i])
        left = tokenizer.padding_side == "left"
        for key in ("input_ids", "labels"):
            mine = batch[key][row][-n:] if left else batch[key][row][:n]
            theirs = whole[key][i][-n:] if left else whole[key][i][:n]
            assert torch.equal(mine, theirs), key
    by_8, by_3 = (evaluate_mlm(model, batcher, sequences, size, torch.device("cpu")) for size in (8, 3))
    assert by_8["masked_tokens"] == by_3["masked_tokens"] > 0
    assert by_8["loss"] == pytest.approx(by_3["loss"], rel=1e-5)


def test_whole_word_masking_refuses_a_tokenizer_without_wordpieces(tmp_path: Path) -> None:
    # transformers' collator would only warn and mask single BPE pieces.
    roberta = make_tiny_roberta(tmp_path / "roberta", max_position_embeddings=80)
    with pytest.raises(PretrainError, match="WordPiece tokenizer.*drop --whole-word-mask"):
        run(roberta, tmp_path / "out", whole_word_mask=True)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_resume_gives_the_weights_of_an_uninterrupted_run(tiny_bert: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForMaskedLM

    straight = run(tiny_bert, tmp_path / "straight", steps=7)
    partial = run(tiny_bert, tmp_path / "resumed", steps=7, stop_at_step=3)
    assert partial == {"complete": False, "steps": 3, "total_steps": 7}
    assert not (tmp_path / "resumed" / RESULTS_FILE).exists()
    resumed = run(tiny_bert, tmp_path / "resumed", steps=7, resume=True)
    assert resumed["steps"] == straight["steps"] == 7
    assert resumed["tokens_seen"] == straight["tokens_seen"]
    assert resumed["heldout"]["before"] == straight["heldout"]["before"]
    # The progress bar's loss goes on too (it started again from the step resumed at).
    assert resumed["train_loss_average"] == straight["train_loss_average"] > 0
    a = AutoModelForMaskedLM.from_pretrained(tmp_path / "straight").state_dict()
    b = AutoModelForMaskedLM.from_pretrained(tmp_path / "resumed").state_dict()
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name  # bit for bit
    # ...and the weights did move from the base encoder.
    base = AutoModelForMaskedLM.from_pretrained(tiny_bert).state_dict()
    name = "bert.encoder.layer.0.attention.self.query.weight"
    assert not torch.allclose(base[name], a[name])


def snapshot(directory: Path) -> Dict[str, Tuple[bytes, int]]:
    """Every file under `directory`: its bytes and modification time."""
    return {str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_resume_over_a_finished_run_changes_nothing(tiny_bert: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    results = run(tiny_bert, out, steps=3)
    assert not (out / CHECKPOINT_DIR).exists() and results["precision"] == "float32"
    before = snapshot(out)
    messages: List[str] = []
    again = pretrain(settings(tiny_bert, steps=3), toy_text(), out, resume=True, progress=False, log=messages.append)
    assert again == results and again["steps"] == 3
    assert snapshot(out) == before  # the weights, the results: not a byte rewritten
    assert any("nothing to resume" in message for message in messages)
    # A finished run cannot be continued with other settings: no checkpoint.
    with pytest.raises(PretrainError, match="finished run.*total_steps: finished run 3, now 5"):
        run(tiny_bert, out, steps=5, resume=True)
    assert snapshot(out) == before


def test_the_same_run_given_otherwise_is_resumed_not_replaced(tiny_bert: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The default (one epoch), `--epochs 1`, the `--steps` of one epoch, and the encoder's
    path spelt another way are one run: the project's `--resume --restart-if-changed` threw
    such a finished run away and trained it again."""
    out = tmp_path / "out"
    monkeypatch.chdir(tiny_bert.parent)
    results = run(Path(tiny_bert.name), out, steps=None)  # relative to where it ran: resumed from elsewhere below
    assert results["base_encoder"] == str(tiny_bert.resolve())
    before = snapshot(out)
    monkeypatch.chdir(tmp_path)
    for spelling, given in ((os.path.relpath(tiny_bert, tmp_path), {"epochs": 1.0}),
                            (str(tiny_bert), {"steps": results["steps"]})):
        messages: List[str] = []
        again = pretrain(settings(Path(spelling), **{"steps": None, **given}), iter(toy_text()), out,
                         resume=True, progress=False, log=messages.append)
        assert again == results and any("nothing to resume" in message for message in messages), messages
    assert snapshot(out) == before


@pytest.mark.slow
def test_resume_over_a_finished_run_compares_its_packed_text(tiny_bert: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    results = run(tiny_bert, out, steps=2)
    other = [" ".join(words) for words, _ in toy_sentences(300, seed=7)]
    with pytest.raises(PretrainError, match="finished run.*the packed text differs"):
        pretrain(settings(tiny_bert, steps=2), other, out, resume=True, progress=False, log=lambda _: None)
    assert len(results[DATA_FINGERPRINT]) == 64  # what was compared
    # What the encoder makes of the settings is compared too.
    with pytest.raises(PretrainError, match="sequence_length: finished run 32, now 24"):
        run(tiny_bert, out, steps=2, max_length=24, resume=True)
    # A results file without the fingerprint (an earlier version's): the text
    # files it names are compared where the caller names them; else nothing.
    legacy = dict(results)
    del legacy[DATA_FINGERPRINT]
    (out / RESULTS_FILE).write_text(json.dumps(legacy), encoding="utf8")
    with pytest.raises(PretrainError, match="the text differs"):
        pretrain(settings(tiny_bert, steps=2), other, out, resume=True, progress=False, log=lambda _: None,
                 sources=[{"path": "other.txt", "md5": "0" * 32, "lines": 300}])
    assert run(tiny_bert, out, steps=2, resume=True) == legacy
    # Its weights deleted, it is no finished run (one that said "nothing to resume" left `spacy train`
    # an encoder without weights, and the project's pretrain never trained it again).
    weights = [path for path in out.iterdir() if path.suffix in (".safetensors", ".bin")]
    assert weights
    for path in weights:
        path.unlink()
    missing = f"its finished run's {weights[0].name} is missing; rerun without --resume"
    with pytest.raises(OtherRun, match=missing) as refused:
        run(tiny_bert, out, steps=2, resume=True)
    assert refused.value.what == "finished run"  # what --restart-if-changed replaces with a fresh run


def test_a_run_killed_while_saving_the_encoder_lists_all_its_files_once_resumed(tiny_bert: Path,
                                                                                 tmp_path: Path) -> None:
    """The files saved before the kill were left out of the resumed run's `files`."""
    out = tmp_path / "out"
    run(tiny_bert, out, steps=4, stop_at_step=3)  # a checkpoint written, the encoder not yet saved
    (out / "config.json").write_text("{}", encoding="utf8")  # as the killed save left it
    results = run(tiny_bert, out, steps=4, resume=True)
    assert results["complete"] and "config.json" in results["files"]
    assert set(results["files"]) == {p.name for p in out.iterdir()} - {RUN_MARKER, RESULTS_FILE}


@pytest.mark.slow
def test_the_fallback_is_not_compared_on_resume(tiny_bert: Path, tmp_path: Path) -> None:
    """The encoder it resolves to is: here, the encoder itself, whatever the fallback."""
    out = tmp_path / "out"
    run(tiny_bert, out, steps=4, stop_at_step=2)
    results = run(tiny_bert, out, steps=4, resume=True, fallback=str(tmp_path / "elsewhere"))
    assert results["complete"] and results["steps"] == 4
    assert run(tiny_bert, out, steps=4, resume=True, fallback="") == results


@pytest.mark.slow
@pytest.mark.parametrize("resume", [True, False])
def test_a_run_stopped_in_its_first_checkpoint_can_be_rerun(
    tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resume: bool
) -> None:
    out = tmp_path / "out"
    save = torch.save

    def interrupted(obj, path, *args, **kwargs):  # Ctrl-C while the first checkpoint is written
        if Path(path).name == "optimizer.pt":
            raise KeyboardInterrupt
        save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_bert, out, steps=4)
    monkeypatch.undo()
    assert sorted(p.name for p in out.iterdir()) == sorted([RUN_MARKER, CHECKPOINT_TMP])
    check_output_dir(out)
    results = run(tiny_bert, out, steps=4, resume=resume)
    assert results["complete"] and not (out / CHECKPOINT_TMP).exists()


@pytest.mark.slow
def test_a_run_stopped_while_removing_its_checkpoint_leaves_no_checkpoint(
    tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The finished run's checkpoint was deleted in place: Ctrl-C halfway left a partial
    checkpoint/ in the encoder directory for good."""
    from spacy_bioner.pretraining import output as pretraining_output

    out = tmp_path / "out"
    rmtree = shutil.rmtree

    def interrupted(path, *args, **kwargs):  # Ctrl-C after the first file is deleted
        if Path(path).name == CHECKPOINT_TMP:
            next(p for p in Path(path).rglob("*") if p.is_file()).unlink()
            raise KeyboardInterrupt
        rmtree(path, *args, **kwargs)

    monkeypatch.setattr(pretraining_output.shutil, "rmtree", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_bert, out, steps=3)
    monkeypatch.undo()
    assert not (out / CHECKPOINT_DIR).exists() and (out / CHECKPOINT_TMP).is_dir()
    results = json.loads((out / RESULTS_FILE).read_text(encoding="utf8"))
    assert results["complete"]
    assert run(tiny_bert, out, steps=3, resume=True) == results  # finished: the leftover goes
    assert not (out / CHECKPOINT_TMP).exists() and not (out / CHECKPOINT_DIR).exists()
    assert {p.name for p in out.iterdir()} == {RUN_MARKER, RESULTS_FILE, *results["files"]}


def test_a_folder_of_other_files_is_not_taken_for_an_output(tmp_path: Path) -> None:
    """Only what a run writes marks a folder as its own to empty: a folder that merely
    has a checkpoint.tmp/ beside other files is refused, and its files stay."""
    out = tmp_path / "out"
    (out / CHECKPOINT_TMP).mkdir(parents=True)
    (out / "mydata.csv").write_text("a,b\n", encoding="utf8")
    with pytest.raises(PretrainError, match="holds no pretraining output"):
        check_output_dir(out)
    assert (out / "mydata.csv").exists()


def test_an_output_that_holds_other_files_is_refused_and_they_stay(adapted: Path, tmp_path: Path) -> None:
    """A run replaces its output, which may hold only what a run wrote: the encoder's files
    (listed in the results), results, checkpoints. A folder that merely holds a copied
    pretraining.json beside other files was emptied, subfolders too."""
    results = json.loads((adapted / RESULTS_FILE).read_text(encoding="utf8"))
    assert "config.json" in results["files"] and RESULTS_FILE not in results["files"]
    reports = tmp_path / "reports"
    (reports / "figures").mkdir(parents=True)
    shutil.copy(adapted / RESULTS_FILE, reports)
    (reports / "notes.md").write_text("mine", encoding="utf8")
    output = tmp_path / "output"
    shutil.copytree(adapted, output)
    (output / "README.md").write_text("mine", encoding="utf8")
    for folder, shown in ((reports, "figures, notes.md, which no run wrote"), (output, "README.md, which")):
        before = snapshot(folder)
        with pytest.raises(PretrainError, match=f"holds a pretraining output and {shown}"):
            check_output_dir(folder)
        result = runner.invoke(app, ["pretrain", str(adapted), str(folder), "--text", str(tmp_path / "missing.txt"),
                                     "--no-task-text"])
        assert result.exit_code == 1 and "move them out" in result.output
        assert snapshot(folder) == before
    (output / "README.md").unlink()
    check_output_dir(output)  # what a run wrote, alone: replaceable


def test_text_in_the_output_directory_is_refused(adapted: Path, tmp_path: Path) -> None:
    output = tmp_path / "output"
    shutil.copytree(adapted, output)
    text = output / "checkpoint" / "corpus.txt"  # in a folder a run writes, so not refused as a stranger
    text.parent.mkdir()
    text.write_text("\n".join(toy_text()), encoding="utf8")
    result = runner.invoke(app, ["pretrain", str(adapted), str(output), "--text", str(text), "--no-task-text"])
    assert result.exit_code == 1 and f"--text {text} is in the output directory" in result.output
    assert text.exists()


@pytest.mark.parametrize("finished", [True, False])
def test_replacing_an_output_stopped_anywhere_leaves_it_recognised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, finished: bool
) -> None:
    """Whatever step of emptying a previous output (one written before the run
    marker) is interrupted (a folder removal halfway), what is left is still a
    pretraining output; once emptied, it holds the marker alone, for the run
    that replaces it."""
    from spacy_bioner.pretraining.output import clear_output

    out = tmp_path / "out"
    names = ["config.json", "model.safetensors", f"{CHECKPOINT_DIR}/trainer_state.json",
             f"{CHECKPOINT_DIR}/model/config.json"] + ([RESULTS_FILE] if finished else [])
    for name in names:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("{}", encoding="utf8")
    rmtree, unlink, rename = shutil.rmtree, Path.unlink, Path.rename
    for stop_at in range(20):
        calls = []

        def counted(real, partly=False):
            def call(path, *args, **kwargs):
                calls.append(path)
                if len(calls) > stop_at:
                    if partly:  # one file of the folder removed, then stopped
                        unlink(next(p for p in sorted(Path(path).rglob("*")) if p.is_file()))
                    raise KeyboardInterrupt
                return real(path, *args, **kwargs)
            return call

        monkeypatch.setattr(shutil, "rmtree", counted(rmtree, partly=True))
        monkeypatch.setattr(Path, "unlink", counted(unlink))
        monkeypatch.setattr(Path, "rename", counted(rename))
        try:
            clear_output(out)
        except KeyboardInterrupt:
            monkeypatch.undo()
            check_output_dir(out)  # recognised
        else:
            break
    monkeypatch.undo()
    assert [path.name for path in out.iterdir()] == [RUN_MARKER]


@pytest.mark.slow
def test_keep_checkpoint_keeps_it(tiny_bert: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    results = run(tiny_bert, out, steps=3, keep_checkpoint=True)
    state = json.loads((out / CHECKPOINT_DIR / "trainer_state.json").read_text(encoding="utf8"))
    assert state["step"] == results["steps"] == 3
    before = snapshot(out)
    assert run(tiny_bert, out, steps=3, keep_checkpoint=True, resume=True) == results
    assert snapshot(out) == before


class _Payload:
    """Pickled, it calls os.mkdir(path) when unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


@pytest.mark.slow
def test_resume_reads_no_pickled_objects(tiny_bert: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(tiny_bert, out, steps=4, stop_at_step=2)
    rng_file = out / CHECKPOINT_DIR / "rng.pt"
    assert set(torch.load(rng_file, weights_only=True)) >= {"masking", "torch"}
    marker = tmp_path / "code-ran"
    torch.save({"masking": _Payload(marker), "torch": torch.get_rng_state()}, rng_file)
    with pytest.raises(PretrainError, match="rng.pt"):
        run(tiny_bert, out, steps=4, resume=True)
    assert not marker.exists()


@pytest.mark.slow
def test_resume_refuses_changed_settings(tiny_bert: Path, tmp_path: Path) -> None:
    run(tiny_bert, tmp_path / "out", steps=4, stop_at_step=2)
    with pytest.raises(PretrainError, match="learn_rate"):
        run(tiny_bert, tmp_path / "out", steps=4, learn_rate=5e-4, resume=True)


def test_autocast_is_bf16_only_where_the_gpu_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib

    from spacy_bioner.pretraining.training import _autocast

    cuda = torch.device("cuda", 0)
    # A GPU's answer, without a GPU: Turing (7.5) emulates bfloat16, Ampere (8.0) has it.
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *args, **kwargs: (7, 5))
    assert isinstance(_autocast(cuda), contextlib.nullcontext)  # float32
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *args, **kwargs: (8, 0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CUDA is not available" on a machine without one
        context = _autocast(cuda)
    assert isinstance(context, torch.autocast) and context.fast_dtype == torch.bfloat16
    assert isinstance(_autocast(torch.device("cpu")), contextlib.nullcontext)


def test_heldout_fraction_is_checked_before_anything_is_loaded(tmp_path: Path) -> None:
    # The encoder does not exist and the text file neither: the fraction is refused first.
    with pytest.raises(PretrainError, match="--heldout-fraction must be in"):
        run(tmp_path / "no-encoder", tmp_path / "out", heldout_fraction=1.0)
    result = runner.invoke(app, ["pretrain", str(tmp_path / "no-encoder"), str(tmp_path / "out"), "--text",
                                 str(tmp_path / "missing.txt"), "--no-task-text", "--heldout-fraction", "1"])
    assert result.exit_code == 1 and "--heldout-fraction must be in [0, 1), got 1.0" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option,values,message", [
    (["--steps", "0"], {"steps": 0}, "--steps must be positive, got 0"),
    (["--epochs", "-1"], {"steps": None, "epochs": -1.0}, "--epochs must be a positive number, got -1.0"),
    (["--epochs", "nan"], {"steps": None, "epochs": math.nan}, "--epochs must be a positive number, got nan"),
    (["--steps", "2", "--epochs", "1"], {"steps": 2, "epochs": 1.0}, "give --steps or --epochs, not both"),
])
def test_steps_and_epochs_are_checked_before_the_text_is_read(
    tmp_path: Path, option: List[str], values: Dict, message: str
) -> None:
    with pytest.raises(PretrainError, match=message):
        settings(tmp_path / "no-encoder", **values).check()
    # Neither the encoder nor the text file exists: reading the text would fail first.
    result = runner.invoke(app, ["pretrain", str(tmp_path / "no-encoder"), str(tmp_path / "out"), "--text",
                                 str(tmp_path / "missing.txt"), "--no-task-text", *option])
    assert result.exit_code == 1 and f"Error: {message}" in result.output
    assert not (tmp_path / "out").exists()


def test_each_epochs_order_is_drawn_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once an epoch, not once a step; the batches are those of the order drawn
    each step before (resumed runs depend on them)."""
    from spacy_bioner.pretraining.training import _batch_indices

    randperm, draws = torch.randperm, []

    def counted(n, *args, **kwargs):
        draws.append(n)
        return randperm(n, *args, **kwargs)

    monkeypatch.setattr(torch, "randperm", counted)
    train, seed = list(range(0, 300, 3)), 987  # 100 sequences: 4 batches of 32 an epoch
    batches = [_batch_indices(step, train, 32, seed) for step in range(12)]
    assert draws == [100] * 3
    for step, batch in enumerate(batches):
        epoch, position = divmod(step, 4)
        order = randperm(100, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        assert batch == [train[i] for i in order[position * 32 : (position + 1) * 32].tolist()]
    assert _batch_indices(5, train, 32, seed) == batches[5]  # resumed in an earlier epoch


def test_epochs_count_whole_passes() -> None:
    # 100 sequences in batches of 32: 4 batches an epoch, the last one short.
    assert total_steps(PretrainSettings(encoder="x", batch_size=32, epochs=2), 100) == 8
    assert total_steps(PretrainSettings(encoder="x", batch_size=32, epochs=0.5), 100) == 2
    assert total_steps(PretrainSettings(encoder="x", batch_size=32), 100) == 4


@pytest.mark.slow
def test_epochs_run_every_training_sequence_that_many_times(tiny_bert: Path, tmp_path: Path) -> None:
    results = run(tiny_bert, tmp_path / "out", steps=None, epochs=2, heldout_fraction=0.0, checkpoint_every=100)
    assert results["train_sequences"] % 8  # a short last batch each epoch
    assert results["steps"] == results["total_steps"] == 2 * math.ceil(results["train_sequences"] / 8)
    assert results["epochs"] == 2
    tokenizer = load_encoder(str(tiny_bert)).tokenizer
    assert results["tokens_seen"] == 2 * sum(len(ids) for ids in pack_sequences(toy_text(), tokenizer, 32))


@pytest.mark.slow
def test_pretraining_without_heldout_is_recorded_and_the_pipeline_saves(tiny_bert: Path, tmp_path: Path) -> None:
    """--heldout-fraction 0: no perplexity to record, and the meta still saves."""
    import spacy

    from spacy_bioner.packaging import record_encoder

    encoder = tmp_path / "encoder"
    results = run(tiny_bert, encoder, steps=2, heldout_fraction=0.0)
    assert results["heldout"] == {"before": None, "after": None}
    fix_random_seed(0)
    nlp = transformer_pipeline(encoder)
    nlp.initialize(lambda: toy_examples(nlp, 4))
    record_encoder(nlp)
    pretraining = nlp.meta[PRETRAINING_META_KEY]
    assert pretraining["heldout_perplexity_before"] is None and pretraining["heldout_perplexity_after"] is None
    assert "masked-LM pretraining" in nlp.meta["description"] and "perplexity" not in nlp.meta["description"]
    assert not validate(ModelMetaSchema, nlp.meta)
    nlp.to_disk(tmp_path / "model")
    assert spacy.load(tmp_path / "model").meta[PRETRAINING_META_KEY] == pretraining


def test_refuses_a_foreign_output_directory(tiny_bert: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine", encoding="utf8")
    with pytest.raises(PretrainError, match="holds no pretraining output"):
        check_output_dir(foreign)
    with pytest.raises(PretrainError, match="holds no pretraining output"):
        run(tiny_bert, foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]  # untouched
    # An encoder directory is no pretraining output either.
    with pytest.raises(PretrainError):
        check_output_dir(tiny_bert)
    check_output_dir(tmp_path / "new")  # new or empty: fine


@pytest.mark.slow
def test_refuses_to_write_over_its_own_encoder(tiny_bert: Path, tmp_path: Path) -> None:
    """A previous output, or a folder inside it, is no encoder to adapt in place:
    the run would replace it before its first step."""
    out = tmp_path / "out"
    run(tiny_bert, out, steps=2, keep_checkpoint=True)
    before = snapshot(out)
    for encoder in (out, out / CHECKPOINT_DIR / "model"):
        with pytest.raises(PretrainError, match="in the output directory"):
            run(encoder, out, steps=2)
        result = runner.invoke(app, ["pretrain", str(encoder), str(out), "--text", str(tmp_path / "missing.txt"),
                                     "--no-task-text"])
        assert result.exit_code == 1 and "which the run replaces" in result.output  # before reading the text
    assert snapshot(out) == before
    # Nor a folder inside the encoder: it would hold a second encoder (and was accepted).
    result = runner.invoke(app, ["pretrain", str(out), str(out / "sub"), "--text", str(tmp_path / "missing.txt"),
                                 "--no-task-text"])
    assert result.exit_code == 1 and f"the output directory {out / 'sub'} is in the encoder {out}" in result.output
    assert snapshot(out) == before
    run(out, tmp_path / "further", steps=2)  # adapted further into a new folder: fine


@pytest.mark.slow
def test_replacing_a_previous_output_is_logged(tiny_bert: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(tiny_bert, out, steps=4, stop_at_step=2)
    messages: List[str] = []
    pretrain(settings(tiny_bert, steps=4), toy_text(), out, progress=False, log=messages.append)
    assert any("Replacing the previous pretraining output" in m and "checkpoint at step 2" in m
               and "(--resume continues a checkpoint of the same run)" in m for m in messages)


def test_an_output_another_run_holds_is_refused_before_anything_is_loaded(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with exclusive_folder(out):
        with pytest.raises(PretrainError, match=f"{out} is in use by another run: wait for it to end"):
            run(tmp_path / "no-encoder", out, steps=2)
        assert not any(out.iterdir())


@pytest.mark.parametrize("values,message", [
    ({"learn_rate": -1.0}, "--learn-rate must be a positive number, got -1.0"),
    ({"learn_rate": 0.0}, "--learn-rate must be a positive number, got 0.0"),
    ({"batch_size": 0}, "--batch-size must be positive, got 0"),
    ({"checkpoint_every": 0}, "--checkpoint-every must be positive, got 0"),
    ({"max_length": 0}, "--max-length must be positive, got 0"),
    ({"warmup": 3.0}, r"--warmup is a fraction of the steps in \[0, 1\], got 3.0"),
    ({"mlm_probability": 0.0}, r"mlm_probability must be in \(0, 1\)"),
])
def test_every_setting_is_checked_before_anything_is_loaded(tmp_path: Path, values: Dict, message: str) -> None:
    # The encoder does not exist: the settings are refused first, by the API as by the CLI.
    with pytest.raises(PretrainError, match=message):
        run(tmp_path / "no-encoder", tmp_path / "out", **values)
    assert not (tmp_path / "out").exists()


def test_cli_refuses_a_negative_learning_rate_before_reading_the_text(tmp_path: Path) -> None:
    result = runner.invoke(app, ["pretrain", str(tmp_path / "no-encoder"), str(tmp_path / "out"), "--text",
                                 str(tmp_path / "missing.txt"), "--no-task-text", "--learn-rate", "-1"])
    assert result.exit_code == 1 and "Error: --learn-rate must be a positive number, got -1.0" in result.output


def test_max_length_too_short_names_the_minimum(tiny_bert: Path) -> None:
    tokenizer = load_encoder(str(tiny_bert)).tokenizer
    with pytest.raises(PretrainError, match="--max-length 9 is too short: at least 10 for this encoder"):
        pack_sequences(toy_text(4), tokenizer, 9)
    assert pack_sequences(toy_text(4), tokenizer, 10)


def test_the_project_lists_what_pretrain_writes(adapted: Path) -> None:
    """weasel reruns `pretrain` when an output is missing and `spacy project push`
    uploads the outputs: they must be files a run writes, the weights among them."""
    from weasel.util import load_project_config

    project = load_project_config(ROOT, overrides={"vars.adapted_encoder": str(adapted)})
    (pretrain,) = [command for command in project["commands"] if command["name"] == "pretrain"]
    written = {str(path) for path in adapted.iterdir()}
    assert set(pretrain["outputs"]) <= written
    assert {RESULTS_FILE, "model.safetensors"} <= {Path(output).name for output in pretrain["outputs"]}


@pytest.mark.slow
def test_output_loads_as_an_encoder(adapted: Path, tiny_bert: Path) -> None:
    from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

    results = json.loads((adapted / RESULTS_FILE).read_text(encoding="utf8"))
    assert results["complete"] and results["steps"] == 6
    # The finished run keeps no checkpoint in the encoder directory.
    assert not [p.name for p in adapted.iterdir() if p.name.startswith(CHECKPOINT_DIR)]
    check_output_dir(adapted)  # a previous output may be overwritten or resumed
    base, loading = AutoModel.from_pretrained(adapted, output_loading_info=True)
    assert type(base).__name__ == "BertModel"
    # As a masked-LM model it names the pooler unused (the price of the above; pretrain's own load is quiet).
    assert AutoModelForMaskedLM.from_pretrained(adapted, output_loading_info=True)[1]["unexpected_keys"] == [
        "bert.pooler.dense.bias", "bert.pooler.dense.weight"]
    # Nothing "newly initialized": the pooler, which a masked-LM model has not, is the base encoder's.
    assert loading["missing_keys"] == []
    pooler = {name: value for name, value in base.state_dict().items() if name.startswith("pooler.")}
    assert pooler
    for name, value in AutoModel.from_pretrained(tiny_bert).state_dict().items():
        if name in pooler:
            torch.testing.assert_close(value, pooler[name])
    assert AutoTokenizer.from_pretrained(adapted).mask_token == "[MASK]"
    # AutoModel takes the encoder out of the saved masked-LM model.
    mlm = AutoModelForMaskedLM.from_pretrained(adapted)
    for name, value in base.state_dict().items():
        if name not in pooler:
            torch.testing.assert_close(value, mlm.state_dict()[f"bert.{name}"])


def test_a_base_without_a_pooler_gives_an_output_without_one(tmp_path: Path) -> None:
    """A masked-LM checkpoint (RoBERTa's run_mlm outputs) has no pooler: the one AutoModel makes up
    for it is random, and was saved as if it were the base's."""
    from safetensors import safe_open
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    roberta = make_tiny_roberta(tmp_path / "roberta", max_position_embeddings=80)
    base = tmp_path / "roberta-mlm"
    AutoModelForMaskedLM.from_pretrained(roberta).save_pretrained(base)
    AutoTokenizer.from_pretrained(roberta).save_pretrained(base)
    run(base, tmp_path / "out", steps=2)
    with safe_open(str(tmp_path / "out" / "model.safetensors"), "pt") as saved:
        names = list(saved.keys())
    assert any(name.startswith("roberta.encoder.") for name in names)
    assert not [name for name in names if "pooler" in name]


@pytest.mark.slow
def test_output_initialises_trains_saves_and_is_recorded_in_a_spacy_pipeline(
    adapted: Path, tiny_bert: Path, tmp_path: Path
) -> None:
    """pretrain -> train -> save -> load: the adapted weights travel inside the
    pipeline, and meta.json names the base encoder and the pretraining."""
    import spacy
    from transformers import AutoModel

    from spacy_bioner.packaging import record_encoder

    fix_random_seed(0)
    nlp = transformer_pipeline(adapted)
    examples = toy_examples(nlp, 8)
    nlp.initialize(lambda: examples)
    # The pipeline starts from the adapted weights, not the base encoder's.
    initial = nlp.get_pipe("transformer").model.transformer.state_dict()  # the live tensors: compared at once
    adapted_weights, base = (AutoModel.from_pretrained(path).state_dict() for path in (adapted, tiny_bert))
    encoder_names = [name for name in adapted_weights if not name.startswith("pooler.")]  # new in the adapted one
    assert all(torch.equal(initial[name], adapted_weights[name]) for name in encoder_names)
    assert not all(torch.equal(initial[name], base[name]) for name in encoder_names)
    losses = nlp.update(examples, sgd=Adam(0.001))
    assert losses["jnlpba"] > 0
    record_encoder(nlp)
    record = json.loads((adapted / "pretraining.json").read_text())
    pretraining = nlp.meta[PRETRAINING_META_KEY]
    assert pretraining["steps"] == record["steps"] > 0 and pretraining["base_encoder"] == record["base_encoder"]
    assert "masked-LM pretraining" in nlp.meta["description"]
    # spacy package validates meta.json: a source holds strings only.
    assert not validate(ModelMetaSchema, nlp.meta)
    nlp.to_disk(tmp_path / "model")
    reloaded = spacy.load(tmp_path / "model")
    before = nlp.get_pipe("transformer").model.transformer.state_dict()
    after = reloaded.get_pipe("transformer").model.transformer.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[name], after[name]) for name in before)
    # The same tags and confidences from the reloaded pipeline.
    text = "p53 activates IL-2 in T cells"
    [(path, confidence)] = nlp.get_pipe("jnlpba").predict([nlp.get_pipe("transformer")(nlp.make_doc(text))])
    [(path2, confidence2)] = reloaded.get_pipe("jnlpba").predict(
        [reloaded.get_pipe("transformer")(reloaded.make_doc(text))])
    assert path.tolist() == path2.tolist()
    np.testing.assert_allclose(confidence2, confidence, rtol=1e-5)


@pytest.fixture(scope="module")
def corpora(bio_nlp: Language) -> Dict[str, list]:
    """The documents of the embedded corpora, read once with the package's readers:
    JNLPBA's training file (its last JNLPBA_DEV_DOCS are the dev set) and test
    file, BC5CDR's PubTator and IOB splits."""
    from spacy_bioner.corpora import read_iob, read_jnlpba, read_pubtator

    # The training files as the package names them (what the task text is made from).
    assets = ROOT / DEFAULT_ASSETS
    docs = {
        "JNLPBA train": read_jnlpba(assets / JNLPBA_TRAIN, bio_nlp.vocab)[0],
        "JNLPBA test": read_jnlpba(JNLPBA_TEST, bio_nlp.vocab)[0],
        "BC5CDR train PubTator": read_pubtator(assets / BC5CDR_TRAIN, bio_nlp)[0],
    }
    for name, iob in (("dev", "devel"), ("test", "test")):
        docs[f"BC5CDR {name} PubTator"] = read_pubtator(PUBTATOR[name], bio_nlp)[0]
        docs[f"BC5CDR {name} IOB"] = read_iob(BC5CDR_IOB[iob], bio_nlp.vocab)[0]
    return docs


@pytest.fixture(scope="module")
def task_text() -> List[str]:
    """What `pretrain --task-text` adds: the task training text of the embedded assets."""
    return task_training_text(ROOT / DEFAULT_ASSETS)


@pytest.mark.slow
def test_task_text_has_no_dev_or_test_text(corpora: Dict[str, list], task_text: List[str]) -> None:
    def norm(text: str) -> str:
        return "".join(text.split()).lower()

    collected_norm: Set[str] = {norm(line) for line in task_text}

    jnlpba, jnlpba_test = corpora["JNLPBA train"], corpora["JNLPBA test"]
    held_docs = jnlpba[-JNLPBA_DEV_DOCS:] + jnlpba_test + corpora["BC5CDR dev IOB"] + corpora["BC5CDR test IOB"]
    held_sents = {norm(s.text) for doc in held_docs for s in doc.sents}
    # The official training file holds some test abstracts (by PMID): only
    # the others are training text.
    held_pmids = {doc.user_data["pmid"] for doc in jnlpba[-JNLPBA_DEV_DOCS:] + jnlpba_test}
    train_docs = [doc for doc in jnlpba[:-JNLPBA_DEV_DOCS] if doc.user_data["pmid"] not in held_pmids]
    assert len(train_docs) < len(jnlpba) - JNLPBA_DEV_DOCS
    train_sents = {norm(s.text) for doc in train_docs for s in doc.sents}
    assert train_sents <= collected_norm  # the comparison works: training text is found
    # No task-text sentence is in a dev or test document, except the few that
    # are also in a training document (boilerplate: "(ABSTRACT TRUNCATED ...)").
    held_only = held_sents - train_sents
    assert len(held_sents & train_sents) < 20
    assert not held_only & collected_norm

    # BC5CDR: whole documents; no dev/test document, nor its title, in the text.
    assert {norm(doc.text) for doc in corpora["BC5CDR train PubTator"]} <= collected_norm
    prefixes = {line[:80] for line in collected_norm}
    for split in ("dev", "test"):
        docs = corpora[f"BC5CDR {split} PubTator"]
        assert not {norm(doc.text) for doc in docs} & collected_norm
        assert not {norm(doc.text)[:80] for doc in docs} & prefixes

    # The embedded collection is filtered too (assets/unlabeled/README.md).
    embedded = {norm(line) for line in read_text_file(ROOT / DEFAULT_TEXT)}
    assert not held_only & embedded


# Pretraining text against evaluation text by containment, both ways
# (spacy_bioner/pretraining/evaluation_text.py, which also made the embedded
# collection so). Written independently of that module: the strings are
# anchored at their *last* MIN_CHARS characters.
MIN_CHARS = 40
# Per source of dev or test text: (documents, or sentences where a corpus has
# no documents; sentences), normalised.
Evaluation = Dict[str, Tuple[List[str], List[str]]]


def leak_norm(text: str) -> str:
    """Lower-cased, no whitespace, JNLPBA's `` and '' read as the collection's "."""
    return "".join(text.split()).lower().replace("``", '"').replace("''", '"')


@pytest.fixture(scope="module")
def evaluation_text(corpora: Dict[str, list]) -> Evaluation:
    """The JNLPBA and BC5CDR dev and test text."""
    groups = {"JNLPBA dev": corpora["JNLPBA train"][-JNLPBA_DEV_DOCS:], "JNLPBA test": corpora["JNLPBA test"]}
    for name in ("dev", "test"):
        for form in ("PubTator", "IOB"):
            groups[f"BC5CDR {name} {form}"] = corpora[f"BC5CDR {name} {form}"]
    return {
        name: ([leak_norm(doc.text) for doc in docs], [leak_norm(s.text) for doc in docs for s in doc.sents])
        for name, docs in groups.items()
    }


def _ends_in(needles: Sequence[str], haystacks: Sequence[str]) -> List[Tuple[int, int]]:
    """(needle index, haystack index) for each needle of >= MIN_CHARS characters
    that is a substring of a haystack."""
    by_end: Dict[str, List[int]] = {}
    for i, needle in enumerate(needles):
        if len(needle) >= MIN_CHARS:
            by_end.setdefault(needle[-MIN_CHARS:], []).append(i)
    text = "\0".join(haystacks)
    starts = [0]
    for haystack in haystacks:
        starts.append(starts[-1] + len(haystack) + 1)
    found = []
    for end in [e for e in range(MIN_CHARS, len(text) + 1) if text[e - MIN_CHARS : e] in by_end]:
        for i in by_end[text[end - MIN_CHARS : end]]:
            if text[max(0, end - len(needles[i])) : end] == needles[i]:
                found.append((i, bisect.bisect_right(starts, end - 1) - 1))
    return found


def leaks(lines: Sequence[str], evaluation: Evaluation) -> List[str]:
    """Each line that lies inside an evaluation document or sentence, or that
    holds an evaluation sentence (both of >= MIN_CHARS normalised characters)."""
    normalised = [leak_norm(line) for line in lines]
    documents = [(name, doc) for name, (docs, _) in evaluation.items() for doc in docs]
    sentences = [(name, sent) for name, (_, sents) in evaluation.items() for sent in sents]
    found = [f"line {i + 1} inside {documents[j][0]}: {lines[i][:80]}"
             for i, j in _ends_in(normalised, [doc for _, doc in documents])]
    found += [f"line {i + 1} holds a {sentences[j][0]} sentence: {sentences[j][1][:80]}"
              for j, i in _ends_in([sent for _, sent in sentences], normalised)]
    return sorted(set(found))


def leaking_text(evaluation: Evaluation) -> List[str]:
    """Lines of a --text file: two that overlap the evaluation text (by either rule), two that do not."""
    dev_abstract = evaluation["JNLPBA dev"][0][7]
    test_sentence = next(s for s in evaluation["BC5CDR test IOB"][1] if len(s) > 60)
    return [
        "Nothing from any corpus here, however long this line may be .",
        dev_abstract[30:100].upper(),  # a piece of a dev abstract
        " ".join(dev_abstract[: MIN_CHARS - 1]),  # inside, but too short to count
        "Before " + test_sentence + " and after",  # holds a test sentence
    ]


def test_leak_check_finds_containment_both_ways(evaluation_text: Evaluation) -> None:
    found = {f.split(":")[0] for f in leaks(leaking_text(evaluation_text), evaluation_text)}
    assert "line 2 inside JNLPBA dev" in found
    assert "line 4 holds a BC5CDR test IOB sentence" in found
    assert {f.split()[1] for f in found} == {"2", "4"}


def test_embedded_collection_has_no_dev_or_test_text(evaluation_text: Evaluation) -> None:
    """No line of the pretraining collection lies inside a JNLPBA or BC5CDR dev or
    test sentence or document, nor holds such a sentence (assets/unlabeled/README.md)."""
    assert leaks(read_text_file(ROOT / DEFAULT_TEXT), evaluation_text) == []


@pytest.fixture(scope="module")
def eval_sources() -> List[EvalSource]:
    """The dev and test text as `pretrain` reads it from the embedded assets."""
    return read_eval_sources(ROOT / DEFAULT_ASSETS)


def test_pretrain_text_drops_what_overlaps_dev_or_test_text(
    evaluation_text: Evaluation, eval_sources: List[EvalSource], tmp_path: Path
) -> None:
    """The lines the independent check above finds are those dropped, counted in their source;
    in chunks of any size (each small chunk passes over all the evaluation text: few lines then);
    none dropped without an evaluation text (--keep-eval-text)."""
    sample = read_text_file(ROOT / DEFAULT_TEXT)[:500]
    for n_sample, chunks in ((500, [(10**5, 10**7)]), (6, [(1, 10**7), (3, 10**7), (10**5, 150)])):
        lines = leaking_text(evaluation_text) + sample[:n_sample]
        leaked = {int(found.split()[1]) - 1 for found in leaks(lines, evaluation_text)}
        assert leaked == {1, 3}
        path = tmp_path / f"text-{n_sample}.txt"
        path.write_text("\n".join(lines), encoding="utf8")
        for chunk_lines, chunk_chars in chunks:
            said: List[str] = []
            evaluation = EvaluationText(tmp_path / "no-assets", chunk_lines=chunk_lines, chunk_chars=chunk_chars,
                                        sources=eval_sources)
            text = PretrainText([path], include_task_text=False, evaluation_text=evaluation, log=said.append)
            assert list(text) == [line for i, line in enumerate(lines) if i not in leaked]
            assert text.sources[0]["lines"] == len(lines) - 2 and text.sources[0]["dropped_eval_lines"] == 2
            assert said == [f"{path}: 2 lines dropped, overlapping the dev or test text of JNLPBA or BC5CDR "
                            "(--keep-eval-text keeps them)"]
    kept = PretrainText([path], include_task_text=False)
    assert list(kept) == lines and kept.sources[0]["dropped_eval_lines"] is None


def test_dev_and_test_text_in_pubmed_typography_is_found(eval_sources: List[EvalSource]) -> None:
    """The corpora write "+/-", "alpha" and "-"; a PubMed dump "±", "α" and en dashes: one sentence
    a line, none of the rewritten evaluation sentences was found."""
    from spacy_bioner.pretraining.evaluation_text import filter_lines

    pubmed = {"+/-": "±", ">=": "≥", "alpha": "α", "beta": "β", "micrograms": "µgrams"}
    rewritten = []
    for source in eval_sources:
        for sentence in source.sentences:
            if len(sentence) >= 60 and any(ascii_form in sentence for ascii_form in pubmed):
                for ascii_form, form in pubmed.items():
                    sentence = sentence.replace(ascii_form, form)
                rewritten.append(re.sub(r"(?<=\d)-(?=\d)", "\u2013", sentence))
    assert len(rewritten) > 100 and all(not line.isascii() for line in rewritten)
    keep, _ = filter_lines(rewritten, eval_sources)
    assert not any(keep)
    keep, _ = filter_lines(["α-Synuclein ± 2 µg of TNF–β were given to rats in an unrelated study here."],
                           eval_sources)
    assert keep == [True]


@pytest.mark.slow
def test_cli_drops_dev_and_test_text_unless_kept(
    tiny_bert: Path, evaluation_text: Evaluation, tmp_path: Path
) -> None:
    text = tmp_path / "text.txt"
    text.write_text("\n".join(leaking_text(evaluation_text) + toy_text(40)), encoding="utf8")
    args = ["pretrain", str(tiny_bert), "OUT", "--text", str(text), "--no-task-text", "--steps", "1",
            "--batch-size", "2", "--max-length", "32", "--heldout-fraction", "0", "--no-progress"]
    for name, extra, dropped in (("dropped", [], 2), ("kept", ["--keep-eval-text"], None)):
        out = tmp_path / name
        result = runner.invoke(app, [str(out) if arg == "OUT" else arg for arg in args] + extra)
        assert result.exit_code == 0, result.output
        (source,) = json.loads((out / RESULTS_FILE).read_text(encoding="utf8"))["text"]
        assert source["dropped_eval_lines"] == dropped and source["lines"] == 44 - (dropped or 0)
        assert ("2 lines dropped, overlapping the dev or test text" in result.output) == bool(dropped)
    # A run that trained on them (an earlier version's) is another run's text: the refusal says how to resume it.
    kept = [str(tmp_path / "kept") if arg == "OUT" else arg for arg in args] + ["--resume"]
    result = runner.invoke(app, kept)
    assert result.exit_code == 1 and "the packed text differs" in result.output
    assert result.output.rstrip().endswith("This run dropped 2 lines of the text that overlap the dev or test text "
                                           "of JNLPBA or BC5CDR: a run that trained on them resumes with "
                                           "--keep-eval-text")
    result = runner.invoke(app, kept + ["--keep-eval-text"])
    assert result.exit_code == 0 and "nothing to resume" in result.output


def test_a_text_all_dropped_as_dev_or_test_text_says_so(
    tiny_bert: Path, evaluation_text: Evaluation, tmp_path: Path
) -> None:
    """It said the text packs into no sequence, not that the leakage check had dropped all of it."""
    text = tmp_path / "text.txt"
    leaking = leaking_text(evaluation_text)
    text.write_text("\n".join([leaking[1], leaking[3]]), encoding="utf8")  # those the check drops
    result = runner.invoke(app, ["pretrain", str(tiny_bert), str(tmp_path / "out"), "--text", str(text),
                                 "--no-task-text", "--steps", "1", "--no-progress"])
    assert result.exit_code == 1
    assert ("the text packs into no sequence (2 lines dropped as overlapping the dev or test text; "
            "--keep-eval-text keeps them)") in " ".join(result.output.split())


def test_cli_help_explains_the_options() -> None:
    options = {param.opts[0] for param in typer.main.get_command(app).commands["pretrain"].params}
    assert {"--text", "--task-text", "--steps", "--epochs", "--batch-size", "--max-length",
            "--learn-rate", "--warmup", "--whole-word-mask", "--seed", "--gpu-id",
            "--heldout-fraction", "--resume", "--task-text-only", "--keep-checkpoint"} <= options
    assert_help_explains_every_option(app, "pretrain")


def test_cli_errors(tiny_bert: Path, tmp_path: Path) -> None:
    text = tmp_path / "text.txt"
    text.write_text("\n".join(toy_text(20)), encoding="utf8")
    base = ["pretrain", str(tiny_bert), str(tmp_path / "out"), "--text", str(text), "--no-task-text"]
    result = runner.invoke(app, base + ["--steps", "2", "--epochs", "1"])
    assert result.exit_code == 1 and "not both" in result.output
    result = runner.invoke(app, ["pretrain", str(tiny_bert), str(tmp_path / "out"), "--text",
                                 str(tmp_path / "missing.txt"), "--no-task-text"])
    assert result.exit_code == 1 and "no such file" in result.output
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text("\n".join(toy_text(20)), encoding="utf8")
    result = runner.invoke(app, ["pretrain", str(tiny_bert), str(tmp_path / "out"), "--text", str(folder),
                                 "--no-task-text"])
    assert result.exit_code == 1
    [line] = result.output.splitlines()
    assert f"--text {folder} is a folder" in line
    assert line.endswith(f"each with its own --text (e.g. --text {folder / 'a.txt'})")
    if hasattr(os, "mkfifo"):  # a pipe, <(xzcat text.xz): read twice, it would give its lines once
        os.mkfifo(tmp_path / "pipe")
        result = runner.invoke(app, ["pretrain", str(tiny_bert), str(tmp_path / "out"), "--text",
                                     str(tmp_path / "pipe"), "--no-task-text"])
        assert result.exit_code == 1 and "pipe: not a file (a pipe?)" in result.output
        assert "write it to a file" in result.output
    result = runner.invoke(app, base[:2] + [str(tiny_bert)] + base[3:])  # the encoder itself as output
    assert result.exit_code == 1 and "holds no pretraining output" in result.output
    result = runner.invoke(app, ["pretrain", str(tmp_path / "no-encoder"), str(tmp_path / "out"), "--text",
                                 str(text), "--no-task-text"])
    assert result.exit_code == 1 and "not a model directory" in result.output
    result = runner.invoke(app, ["pretrain", "no-such-org/encoder", str(tmp_path / "out"), "--text", str(text),
                                 "--no-task-text"], env={"HF_HUB_OFFLINE": "1"})
    # This command's own options, not the project's or spacy train's.
    assert result.exit_code == 1 and "Pass a local path (as ENCODER), or set --fallback, e.g." in result.output
    result = runner.invoke(app, base + ["--task-text-only"])
    assert result.exit_code == 1 and "task text alone" in result.output
    # --assets is read for the task text and for the dev and test text: with neither, refused.
    result = runner.invoke(app, base + ["--assets", str(tmp_path), "--keep-eval-text"])
    assert result.exit_code == 1 and "--no-task-text and --keep-eval-text leave out" in result.output
    assert not (tmp_path / "out").exists()


def test_cli_refuses_a_missing_gpu_in_one_line_and_writes_nothing(tiny_bert: Path, tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is usable here")
    text = tmp_path / "text.txt"
    text.write_text("\n".join(toy_text(20)), encoding="utf8")
    # Settings that run on the CPU: only --gpu-id stops it.
    result = runner.invoke(app, ["pretrain", str(tiny_bert), str(tmp_path / "out"), "--text", str(text),
                                 "--no-task-text", "--steps", "1", "--batch-size", "2", "--max-length", "32",
                                 "--heldout-fraction", "0", "--no-progress", "--gpu-id", "0"])
    assert result.exit_code == 1, result.output
    [line] = result.output.splitlines()
    assert line.startswith("Error: --gpu-id 0:") and line.endswith("use -1 for the CPU")
    assert not (tmp_path / "out").exists()


def test_cli_explains_missing_default_paths(tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default --text and --assets are relative to the project directory."""
    monkeypatch.chdir(tmp_path)
    text = tmp_path / "text.txt"
    text.write_text("\n".join(toy_text(20)), encoding="utf8")
    base = ["pretrain", str(tiny_bert), str(tmp_path / "out")]
    result = runner.invoke(app, base + ["--no-task-text"])
    assert result.exit_code == 1
    assert f"default text {DEFAULT_TEXT} was not found" in result.output
    assert "project directory" in result.output and "--text FILE" in result.output
    result = runner.invoke(app, base + ["--text", str(text)])
    assert result.exit_code == 1
    assert f"default assets directory {DEFAULT_ASSETS}" in result.output
    assert "--assets DIR" in result.output and "--no-task-text" in result.output
    result = runner.invoke(app, base + ["--task-text-only"])
    assert result.exit_code == 1 and "--assets DIR" in result.output
    # The text is checked against the dev and test text, read from the assets too.
    result = runner.invoke(app, base + ["--text", str(text), "--no-task-text"])
    assert result.exit_code == 1, result.output
    [line] = result.output.splitlines()
    assert f"not in the default assets directory {DEFAULT_ASSETS}" in line
    assert "--assets DIR" in line and line.endswith("or --keep-eval-text to train on the text as it is")
    result = runner.invoke(app, base + ["--text", str(text), "--no-task-text", "--assets", str(tmp_path)])
    assert result.exit_code == 1 and f"not in --assets {tmp_path}" in result.output
    assert "pass the project's assets as --assets DIR" in result.output and "project directory" not in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_cli_writes_an_encoder(tiny_bert: Path, tmp_path: Path) -> None:
    text = tmp_path / "text.txt"
    text.write_text("\n".join(toy_text(60)), encoding="utf8")
    out = tmp_path / "out"
    args = ["pretrain", str(tiny_bert), str(out), "--text", str(text), "--no-task-text", "--keep-eval-text",
            "--steps", "3", "--batch-size", "4", "--max-length", "32", "--heldout-fraction", "0.1", "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    results = json.loads((out / RESULTS_FILE).read_text(encoding="utf8"))
    assert results["steps"] == 3 and results["text"][0]["lines"] == 60
    assert results["heldout"]["before"]["perplexity"] > 1
    assert not (out / CHECKPOINT_DIR).exists()
    # --resume over a finished run changes nothing and says so.
    before = snapshot(out)
    result = runner.invoke(app, args + ["--resume"])
    assert result.exit_code == 0 and "nothing to resume" in result.output
    assert snapshot(out) == before
    # Rerunning over its own output starts afresh.
    assert runner.invoke(app, args + ["--keep-checkpoint"]).exit_code == 0
    assert (out / CHECKPOINT_DIR / "trainer_state.json").is_file()
    # The project's pretrain always resumes, and weasel runs it again when a var changes: --resume
    # refuses a run of other settings, --restart-if-changed replaces it (text read again, line counts right).
    other = [arg if arg != "3" else "4" for arg in args] + ["--resume"]
    result = runner.invoke(app, other)
    assert result.exit_code == 1 and "cannot resume" in result.output
    assert "total_steps: finished run 3, now 4" in result.output
    result = runner.invoke(app, other + ["--restart-if-changed"])
    assert result.exit_code == 0, result.output
    assert "holds another run (finished run: total_steps: finished run 3, now 4): replacing it" in result.output
    assert "--resume continues" not in result.output  # it was given
    results = json.loads((out / RESULTS_FILE).read_text(encoding="utf8"))
    assert results["steps"] == 4 and results["text"][0]["lines"] == 60
    result = runner.invoke(app, args + ["--restart-if-changed"])
    assert result.exit_code == 1 and "--restart-if-changed goes with --resume" in result.output


@pytest.mark.slow
def test_cli_seed_sets_the_run(tiny_bert: Path, tmp_path: Path) -> None:
    """The same --seed gives the same weights; another, other weights (two steps suffice)."""
    from transformers import AutoModelForMaskedLM

    text = tmp_path / "text.txt"
    text.write_text("\n".join(toy_text(20)), encoding="utf8")
    weights = []
    for name, seed in (("first", "0"), ("again", "0"), ("other", "1")):
        result = runner.invoke(app, ["pretrain", str(tiny_bert), str(tmp_path / name), "--text", str(text),
                                     "--no-task-text", "--keep-eval-text", "--steps", "2", "--batch-size",
                                     "2", "--max-length", "32", "--heldout-fraction", "0", "--no-progress",
                                     "--seed", seed])
        assert result.exit_code == 0, result.output
        weights.append(AutoModelForMaskedLM.from_pretrained(tmp_path / name).state_dict())
    first, again, other = weights
    for name in first:
        torch.testing.assert_close(again[name], first[name], rtol=0, atol=0, msg=name)
    # An encoder weight, not only the new MLM head (whose initialisation the seed also sets).
    name = "bert.encoder.layer.0.attention.self.query.weight"
    assert not torch.allclose(other[name], first[name])


@pytest.mark.slow
def test_cli_task_text_only(tiny_bert: Path, tmp_path: Path, task_text: List[str]) -> None:
    """TAPT: the embedded task training text and nothing else."""
    out = tmp_path / "out"
    # No held-out text: its two evaluations, before and after, are not what is tested here.
    args = ["pretrain", str(tiny_bert), str(out), "--task-text-only", "--assets", str(ROOT / "assets"),
            "--steps", "1", "--batch-size", "2", "--max-length", "32", "--heldout-fraction", "0", "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    sources = json.loads((out / RESULTS_FILE).read_text(encoding="utf8"))["text"]
    assert len(sources) == 1 and "unlabeled" not in sources[0]["path"]
    assert sources[0]["lines"] == len(task_text)


@pytest.mark.parametrize("extra", [["--text", "t.txt"], ["--no-task-text"], ["--keep-eval-text"]])
def test_cli_task_text_only_refuses_the_options_it_leaves_unused(tiny_bert: Path, tmp_path: Path,
                                                                 extra: List[str]) -> None:
    """--keep-eval-text was accepted and did nothing: no dev or test text is looked for in the task text."""
    args = ["pretrain", str(tiny_bert), str(tmp_path / "out"), "--task-text-only", *extra, "--steps", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "--task-text-only trains on the task text alone" in result.output and extra[0] in result.output


def test_an_encoder_folder_without_a_tokenizer_is_one_line(tiny_bert: Path, tmp_path: Path) -> None:
    """A folder with config.json and weights but no tokenizer files ended in a TypeError traceback."""
    import shutil

    encoder = tmp_path / "no-tokenizer"
    shutil.copytree(tiny_bert, encoder)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (encoder / name).unlink(missing_ok=True)
    with pytest.raises(PretrainError, match=r"no tokenizer can be loaded \(vocab.txt or tokenizer.json missing\?\)"):
        load_encoder(str(encoder))


def test_sequences_fit_an_encoder_whose_positions_start_after_padding(tmp_path: Path) -> None:
    """RoBERTa-style embeddings number positions from padding_idx + 1: 34 position
    embeddings take 32 tokens, which blocks must not exceed."""
    from spacy_bioner.pretraining import sequence_length

    # Its tokenizer sets no model_max_length: the positions alone are the limit.
    tokenizer, model, _ = load_encoder(str(make_tiny_roberta(tmp_path / "roberta", max_position_embeddings=34)))
    assert sequence_length(tokenizer, model, 512) == 32
    assert sequence_length(tokenizer, model, 16) == 16
