"""Where a steady-state training step goes: ms/step and words/s over `--steps`
steps, then the same number of steps split into phases at the encoder's edges.

    python scripts/step_profile.py --gpu-id 0 --output results/step-profile.json   # from benchmarks/
    python scripts/step_profile.py --gpu-id 0 --variant fused:components.transformer.model.fused_update=true
    python scripts/step_profile.py --gpu-id 0 --trace-steps 5

Each configuration (the shipped config cut down to one head, as `run.py`
trains it, and each `--variant`, config overrides parsed as in `run.py`) is
initialised afresh and warmed up: `--warmup` steps, and (unless
`--no-warm-cache`) on to the second epoch, since the transformer layer
tokenizes a window only the first time it sees it (WordpieceEncoder), so
first-epoch steps are slower than the steady state. Then it is timed twice,
the steps done as spaCy's training loop does them (`nlp.update` without an
optimizer, at the config's dropout, then `finish_update` of each trainable
component, then the schedules):

1. The plain pass: `--steps` steps, synchronised only at their start and end.
   Its ms/step and training words/s are the numbers that count.
2. The split pass: the next `--steps` steps, with a synchronised timestamp at
   each phase boundary, taken by public torch hooks on the Hugging Face
   module (a forward pre-hook, a forward hook, and a tensor hook on the
   output's `last_hidden_state`, which fires when the encoder's backward
   starts). Per step:

   host_before_encoder  step start -> encoder forward: example copies, window
                        splitting, tokenization, alignment, input conversion
   encoder_forward      the HF module's forward
   heads_and_loss       encoder forward end -> encoder backward start: the
                        heads' forward, loss and backward, listener plumbing
   encoder_backward     -> `nlp.update` returns (the last head's backprop runs it)
   optimizer            `finish_update` of every trainable component, and
                        `optimizer.step_schedules()`

   The phases add up to the split step exactly (they are differences of
   consecutive timestamps); the synchronisations make a split step a little
   slower than a plain one, so both are reported.

3. With `--trace-steps N`, N more steps under `torch.profiler`: the GPU
   kernels' time per step against the wall time (a low share means the step
   waits on the host, not the GPU) and the table of the operators that took
   the time.

The batches are the config's batcher over the training corpus, epoch after
epoch, reshuffled; a record counts the timed steps that were first-epoch ones.
Synchronisation (`torch.cuda.synchronize`) only happens when the encoder is
on a GPU, so the same script profiles the CPU.
"""

import gc
import itertools
import logging
import math
import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import spacy
import torch
import typer
from spacy.language import Language
from spacy.schemas import ConfigSchemaTraining
from spacy.training import Example
from spacy.training.initialize import init_nlp
from spacy.training.loop import create_train_batches
from spacy.util import registry, resolve_dot_names
from thinc.api import Optimizer, fix_random_seed
from wasabi import msg

from run import (
    BENCHMARKS,
    CORPORA,
    DEFAULT_CONFIG,
    DEFAULT_ENCODER,
    check_corpus,
    count_batches,
    device_name,
    log,
    parse_variant,
    require_gpu,
    spacy_config,
    versions,
    write_json,
)
from spacy_bioner.corpora import load_docs
from spacy_bioner.encoders import resolve_encoder
from spacy_bioner.layers import crf

PHASES = ("host_before_encoder", "encoder_forward", "heads_and_loss", "encoder_backward", "optimizer")

app = typer.Typer(add_completion=False)


def now(cuda: bool) -> float:
    """`time.perf_counter()`, after the GPU's queued work has finished when `cuda`."""
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter()


def on_cuda(module: torch.nn.Module) -> bool:
    """Whether the module's weights are on a GPU."""
    return any(parameter.is_cuda for parameter in module.parameters())


def hf_module(nlp: Language):
    """The Hugging Face torch module inside the pipeline's transformer."""
    return nlp.get_pipe("transformer").model.transformer


class EncoderClock:
    """Synchronised timestamps of the HF module's forward start and end and of
    its backward start, from public torch hooks; the hooks are registered on
    entering the context and removed on leaving it.

    The backward start is when the gradient of the forward output's
    `last_hidden_state` arrives (a tensor hook registered by the forward hook,
    when the output requires a gradient).
    """

    def __init__(self, module) -> None:
        self.module = module
        self.cuda = on_cuda(module)
        self.forward_starts: List[float] = []
        self.forward_ends: List[float] = []
        self.backward_starts: List[float] = []
        self._handles: list = []

    def __enter__(self) -> "EncoderClock":
        self._handles = [
            self.module.register_forward_pre_hook(self._forward_start),
            self.module.register_forward_hook(self._forward_end),
        ]
        return self

    def __exit__(self, *exc_info) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def clear(self) -> None:
        self.forward_starts, self.forward_ends, self.backward_starts = [], [], []

    def _forward_start(self, module, args) -> None:
        self.forward_starts.append(now(self.cuda))

    def _forward_end(self, module, args, output) -> None:
        self.forward_ends.append(now(self.cuda))
        hidden = output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0]
        if hidden.requires_grad:
            hidden.register_hook(self._backward_start)

    def _backward_start(self, grad) -> None:
        self.backward_starts.append(now(self.cuda))


@dataclass
class Trainer:
    """An initialised pipeline and what spaCy's training loop would step it with."""

    nlp: Language
    optimizer: Optimizer
    batches: Iterator[Tuple[int, List[Example]]]
    dropout: float
    exclude: Sequence[str]
    annotates: Sequence[str]
    cuda: bool

    def update(self, batch: List[Example]) -> None:
        """The first half of spaCy's step: forward and backward, no weight update."""
        self.nlp.update(
            batch, drop=self.dropout, sgd=False, losses={}, exclude=self.exclude, annotates=self.annotates
        )

    def finish_update(self) -> None:
        """The second half, as spacy.training.loop.train_while_improving does it."""
        for name, proc in self.nlp.pipeline:
            if (
                name not in self.exclude
                and hasattr(proc, "is_trainable")
                and proc.is_trainable
                and proc.model not in (True, False, None)
            ):
                proc.finish_update(self.optimizer)
        self.optimizer.step_schedules()

    def step(self, batch: List[Example]) -> None:
        self.update(batch)
        self.finish_update()

    def take(self, steps: int) -> List[Tuple[int, List[Example]]]:
        """The next `steps` (epoch, batch) pairs; epoch 0 is the first."""
        batches = list(itertools.islice(self.batches, steps))
        if len(batches) < steps:
            raise RuntimeError(f"the training batches ran out after {len(batches)} of {steps} steps")
        return batches

    def warm_up(self, steps: int, warm_cache: bool = True) -> int:
        """Train `steps` steps and, if `warm_cache`, on into the second epoch;
        return the number of steps taken."""
        taken, epoch = 0, 0
        while taken < steps or (warm_cache and epoch < 1):
            [(epoch, batch)] = self.take(1)
            self.step(batch)
            taken += 1
        return taken


def prepare(
    corpus_dir: Path, corpus: str, encoder: str, overrides: Dict[str, Any], steps: int,
    gpu_id: int = -1, config_path: Path = DEFAULT_CONFIG, plus_epoch: bool = False,
) -> Trainer:
    """Initialise the one-head pipeline and make its endless training batches.

    steps: how many steps will be taken (`plus_epoch`: and one epoch's more),
    over which the learning-rate schedule warms up and decays.
    """
    if gpu_id >= 0:
        require_gpu(gpu_id)
    head = CORPORA[corpus][1]
    if plus_epoch:
        # Batches in one epoch, counted as run.py counts them.
        probe = spacy_config("spacy_bioner", corpus_dir, head, encoder, 1, 1, overrides, 0, config_path)
        steps += count_batches(probe, load_docs(corpus_dir / "train.spacy", spacy.blank("en").vocab))
    # One "epoch" of `steps` steps: the learning-rate schedule spans the profile.
    config = spacy_config("spacy_bioner", corpus_dir, head, encoder, 1, steps, overrides, 0, config_path)
    fix_random_seed(0)
    nlp = init_nlp(config, use_gpu=gpu_id)
    # As spacy.training.loop.train resolves them.
    config = nlp.config.interpolate()
    training = registry.resolve(config["training"], schema=ConfigSchemaTraining)
    if training["accumulate_gradient"] != 1:
        raise typer.BadParameter("training.accumulate_gradient must be 1: a step is one nlp.update here")
    if not isinstance(training["dropout"], float):
        raise typer.BadParameter("training.dropout must be a number (no schedule) here")
    [train_corpus] = resolve_dot_names(config, [training["train_corpus"]])
    # max_epochs 0: epoch after epoch, reshuffled, for as long as steps are taken.
    batches = create_train_batches(nlp, train_corpus, training["batcher"], 0)
    return Trainer(
        nlp=nlp,
        optimizer=training["optimizer"],
        batches=batches,
        dropout=training["dropout"],
        exclude=training["frozen_components"],
        annotates=training["annotating_components"],
        cuda=on_cuda(hf_module(nlp)),
    )


def words(batch: List[Example]) -> int:
    return sum(len(eg) for eg in batch)


def plain_pass(trainer: Trainer, steps: int) -> Dict[str, Any]:
    """`steps` steps timed as a whole: ms/step and training words/s."""
    epochs, batches = zip(*trainer.take(steps))
    start = now(trainer.cuda)
    for batch in batches:
        trainer.step(batch)
    seconds = now(trainer.cuda) - start
    n_words = sum(map(words, batches))
    return {
        "ms_per_step": round(1000 * seconds / steps, 3),
        "words_per_step": round(n_words / steps, 1),
        "train_words_per_second": round(n_words / seconds, 1),
        "first_epoch_steps": epochs.count(0),
    }


def split_pass(trainer: Trainer, steps: int, clock: EncoderClock) -> Dict[str, Any]:
    """`steps` steps with synchronised timestamps at the phase boundaries."""
    epochs, batches = zip(*trainer.take(steps))
    per_step: Dict[str, List[float]] = {phase: [] for phase in PHASES}
    step_ms: List[float] = []
    with clock:
        for batch in batches:
            clock.clear()
            start = now(trainer.cuda)
            trainer.update(batch)
            updated = now(trainer.cuda)
            trainer.finish_update()
            end = now(trainer.cuda)
            if not (clock.forward_starts and clock.forward_ends and clock.backward_starts):
                raise RuntimeError(
                    f"the encoder hooks did not all fire (forward starts {len(clock.forward_starts)}, "
                    f"forward ends {len(clock.forward_ends)}, backward starts {len(clock.backward_starts)}): "
                    "was the transformer trained in this step?"
                )
            bounds = [
                start, clock.forward_starts[0], clock.forward_ends[-1], clock.backward_starts[0], updated, end
            ]
            phases = [1000 * (b - a) for a, b in zip(bounds, bounds[1:])]
            if min(phases) < 0:
                raise RuntimeError(f"the phase boundaries are out of order: {dict(zip(PHASES, phases))}")
            total = 1000 * (end - start)
            # By construction; a check that no phase was left out.
            if not math.isclose(sum(phases), total, rel_tol=1e-9, abs_tol=1e-6):
                raise RuntimeError(f"the phases add up to {sum(phases)} ms, not the step's {total} ms")
            for phase, ms in zip(PHASES, phases):
                per_step[phase].append(ms)
            step_ms.append(total)
    mean_step = statistics.mean(step_ms)
    n_words = sum(map(words, batches))
    return {
        "split_ms_per_step": round(mean_step, 3),
        "split_words_per_step": round(n_words / steps, 1),
        "split_first_epoch_steps": epochs.count(0),
        "phases": {
            phase: {
                "mean_ms": round(statistics.mean(values), 3),
                "median_ms": round(statistics.median(values), 3),
                "share": round(statistics.mean(values) / mean_step, 4),
            }
            for phase, values in per_step.items()
        },
        "phase_ms_per_step": {phase: [round(v, 3) for v in values] for phase, values in per_step.items()},
    }


def kernel_microseconds(averages: Sequence[Any]) -> float:
    """The GPU's busy time in torch.profiler's `key_averages()`: the kernels' own
    rows, as torch's table totals "Self CUDA"; an operator's row repeats the
    time of the kernels it launched."""
    from torch.autograd import DeviceType

    return sum(
        event.self_device_time_total for event in averages
        if event.device_type == DeviceType.CUDA and not getattr(event, "is_user_annotation", False)
    )


def operator_trace(trainer: Trainer, steps: int) -> Dict[str, Any]:
    """`steps` more steps under torch.profiler: how busy the GPU was (its kernels'
    time against the wall time of the steps) and the operators that took it.

    A step whose kernels fill a small share of its wall time is waiting on the
    host (Python, launches, synchronisations), and a faster GPU would not help.
    """
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if trainer.cuda else [])
    _, batches = zip(*trainer.take(steps))
    with profile(activities=activities) as profiler:
        start = now(trainer.cuda)
        for batch in batches:
            trainer.step(batch)
        seconds = now(trainer.cuda) - start
    averages = profiler.key_averages()
    wall_ms = 1000 * seconds / steps
    kernel_ms = kernel_microseconds(averages) / 1000 / steps
    sort_by = "self_device_time_total" if trainer.cuda else "self_cpu_time_total"
    return {
        "trace_steps": steps,
        "trace_ms_per_step": round(wall_ms, 3),
        # None where no kernel was recorded (the CPU, or a profiler without CUPTI).
        "gpu_kernel_ms_per_step": round(kernel_ms, 3) if kernel_ms > 0 else None,
        "gpu_busy_share": round(kernel_ms / wall_ms, 4) if kernel_ms > 0 else None,
        "operators": averages.table(sort_by=sort_by, row_limit=30),
    }


class LogSpaceCount(logging.Handler):
    """The documents the CRF computed again in log space (layers/crf.py's DEBUG records):
    each costs a float64 recursion of a kernel launch or more per token."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.documents = 0
        self.batches = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.documents += getattr(record, "log_space_documents", 0)
        self.batches += 1


@contextmanager
def counting_log_space() -> Iterator[LogSpaceCount]:
    """Count the CRF's log-space fallbacks meanwhile, printing nothing."""
    count = LogSpaceCount()
    level, propagate = crf.logger.level, crf.logger.propagate
    crf.logger.addHandler(count)
    crf.logger.setLevel(logging.DEBUG)
    crf.logger.propagate = False
    try:
        yield count
    finally:
        crf.logger.removeHandler(count)
        crf.logger.setLevel(level)
        crf.logger.propagate = propagate


def measure(
    corpus_dir: Path, corpus: str, encoder: str, name: str, overrides: Dict[str, Any], warmup: int, steps: int,
    gpu_id: int = -1, config_path: Path = DEFAULT_CONFIG, warm_cache: bool = True, trace_steps: int = 0,
) -> Dict[str, Any]:
    """The profile of one configuration: warm-up, plain pass, split pass, and
    `trace_steps` steps under torch.profiler (none when 0).

    encoder: a name or path, resolved as `run.py` does (DEFAULT_ENCODER where
    it cannot be loaded).
    """
    loadable = resolve_encoder(encoder, DEFAULT_ENCODER)
    total = warmup + 2 * steps + trace_steps
    trainer = prepare(corpus_dir, corpus, loadable, overrides, total, gpu_id, config_path, warm_cache)
    warmup_steps = trainer.warm_up(warmup, warm_cache)
    with counting_log_space() as redone:
        plain = plain_pass(trainer, steps)
        split = split_pass(trainer, steps, EncoderClock(hf_module(trainer.nlp)))
    trace = operator_trace(trainer, trace_steps) if trace_steps else {}
    used = trainer.nlp.get_pipe("transformer").model.attrs["name"]
    return {
        "variant": name,
        "overrides": overrides,
        "corpus": corpus,
        # As asked for (a local directory by its folder name), and what was loaded:
        # an encoder package's model folder is just "model".
        "encoder": Path(encoder).name if Path(encoder).is_dir() else encoder,
        "encoder_used": used,
        "device": device_name(gpu_id),
        "versions": versions(),
        "batch_words": trainer.nlp.config["training"]["batcher"]["size"],
        "warmup": warmup,
        "warmup_steps": warmup_steps,
        "steps": steps,
        **plain,
        **split,
        # In the two timed passes: the batches whose forward-backward redid documents, and how many.
        "log_space_batches": redone.batches,
        "log_space_documents": redone.documents,
        **trace,
    }


def print_record(record: Dict[str, Any]) -> None:
    log(
        f"{record['variant']} on {record['corpus']} ({record['encoder']}, {record['device']}): "
        f"{record['ms_per_step']:.1f} ms/step, {record['train_words_per_second']:,.0f} words/s "
        f"({record['words_per_step']:,.0f} words/step); split pass {record['split_ms_per_step']:.1f} ms/step "
        f"({record['split_words_per_step']:,.0f} words/step); after {record['warmup_steps']} warm-up steps, "
        f"first-epoch steps timed: {record['first_epoch_steps']} plain, {record['split_first_epoch_steps']} split; "
        f"CRF documents redone in log space: {record['log_space_documents']} in {record['log_space_batches']} batches"
    )
    rows: List[Tuple[Any, ...]] = [
        (phase, f"{p['mean_ms']:.2f}", f"{p['median_ms']:.2f}", f"{100 * p['share']:.1f}%")
        for phase, p in record["phases"].items()
    ]
    rows.append(("split step", f"{record['split_ms_per_step']:.2f}", "", "100.0%"))
    msg.table(rows, header=("phase", "mean ms", "median ms", "share"), divider=True, aligns=("l", "r", "r", "r"))
    if "trace_steps" in record:
        busy = record["gpu_busy_share"]
        log(
            f"{record['trace_steps']} steps under torch.profiler: {record['trace_ms_per_step']:.1f} ms/step"
            + (f", GPU kernels {record['gpu_kernel_ms_per_step']:.1f} ms/step ({100 * busy:.0f}% busy)" if busy else "")
        )
        print(record["operators"])


@app.command()
def main(
    corpus_root: Path = typer.Option(
        BENCHMARKS / "corpus", help="Converted corpora: <root>/jnlpba and <root>/bc5cdr-iob, each with {train,dev}.spacy."
    ),
    corpus: str = typer.Option("bc5cdr", help=f"The training corpus and head: one of {sorted(CORPORA)}."),
    encoder: str = typer.Option(
        DEFAULT_ENCODER, help=f"Encoder name or path; where it cannot be loaded, {DEFAULT_ENCODER} is used."
    ),
    config_path: Path = typer.Option(DEFAULT_CONFIG, "--config", help="The pipeline config to cut down."),
    gpu_id: int = typer.Option(-1, help="GPU to use; -1 for the CPU."),
    warmup: int = typer.Option(20, min=0, help="Untimed steps first."),
    warm_cache: bool = typer.Option(
        True, help="Also warm up until the second epoch starts (every window seen once): the steady state."
    ),
    steps: int = typer.Option(100, min=1, help="Timed steps in each pass (plain, then split)."),
    variant: List[str] = typer.Option([], help="Also profile 'name:key=value,...' config overrides (repeatable)."),
    trace_steps: int = typer.Option(
        0, min=0, help="Then this many steps under torch.profiler: GPU busy share and the top operators."
    ),
    output: Optional[Path] = typer.Option(None, help="Also write the records here as JSON."),
) -> None:
    """Profile steady-state training steps of the shipped config and each variant."""
    corpus_dir = check_corpus(corpus_root, corpus, ("train", "dev"))
    configurations = [("default", {})] + [parse_variant(v) for v in variant]
    records: List[Dict[str, Any]] = []
    for name, overrides in configurations:
        until = " and to the second epoch" if warm_cache else ""
        log(f"{name} on {corpus}: {warmup} warm-up steps{until}, then 2 x {steps} timed steps")
        record = measure(
            corpus_dir, corpus, encoder, name, overrides, warmup, steps, gpu_id, config_path, warm_cache, trace_steps
        )
        print_record(record)
        records.append(record)
        if output is not None:
            # After every configuration, so a time-out loses only the one in progress.
            write_json(output, records)
            log(f"wrote {output}")
        _release_memory(gpu_id)


def _release_memory(gpu_id: int) -> None:
    """Let the next configuration start without the last one's GPU memory."""
    gc.collect()
    if gpu_id >= 0:
        torch.cuda.empty_cache()


if __name__ == "__main__":
    app()
