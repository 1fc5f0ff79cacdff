"""The output directory: what a run writes there, its checkpoints, and what tells a run it may
resume or replace one."""

import json
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch

from ..corpora.text import PathLike
from ..messages import listed
from .data import MaskingRNG
from .settings import OtherRun, PretrainError, PretrainSettings

RESULTS_FILE = "pretraining.json"
CHECKPOINT_DIR = "checkpoint"
# Where a checkpoint is written before it replaces the previous one, which
# waits as CHECKPOINT_OLD until the new one is in place.
CHECKPOINT_TMP = CHECKPOINT_DIR + ".tmp"
CHECKPOINT_OLD = CHECKPOINT_DIR + ".old"
# Written when a run starts: the folder is this command's to replace.
RUN_MARKER = ".spacy_bioner_pretraining"
# What a run writes besides the encoder.
_RUN_FILES = frozenset({RUN_MARKER, RESULTS_FILE, CHECKPOINT_DIR, CHECKPOINT_TMP, CHECKPOINT_OLD})
# The results file's key for the packed text's fingerprint.
DATA_FINGERPRINT = "data_fingerprint"
_STATE_FILE = "trainer_state.json"
# What to do where a run cannot be resumed (the project's `pretrain` always passes --resume).
START_AFRESH = "rerun without --resume, or remove the directory, to start afresh"


# What `save_pretrained` writes for an encoder and its tokenizer (transformers 4.x), recognised in an
# output whose results do not list its files (a run stopped while saving them, or an earlier version).
_ENCODER_FILES = frozenset({
    "config.json", "generation_config.json", "model.safetensors", "pytorch_model.bin",
    "model.safetensors.index.json", "pytorch_model.bin.index.json", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt", "spiece.model",
    "sentencepiece.bpe.model", "chat_template.jinja",
})
_WEIGHT_SHARD = re.compile(r"(model|pytorch_model)-\d+-of-\d+\.(safetensors|bin)")


def encoder_files(output: Path) -> List[str]:
    """The names in a run's `output` (which holds nothing else: `check_output_dir`) that are not
    the run's marker, results or checkpoints: the encoder's files, once it is saved."""
    return sorted(child.name for child in output.iterdir() if child.name not in _RUN_FILES)


def _written_by_a_run(output: Path) -> Callable[[str], bool]:
    """Whether a name in `output` is one a pretraining run writes: its marker, results and
    checkpoints, and the encoder's files (those its results list, or transformers' names)."""
    names = set(_RUN_FILES | _ENCODER_FILES)
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
            shown = listed(others)
            raise PretrainError(
                f"output directory {path} holds a pretraining output and {shown}, which no run wrote: "
                "a run replaces the directory; move them out, or choose an empty or new directory"
            )


def _inside(path: PathLike, output: PathLike) -> bool:
    """Whether `path` is the directory `output` or inside it (both existing)."""
    path, output = Path(path), Path(output)
    return path.exists() and output.exists() and path.resolve().is_relative_to(output.resolve())


def check_encoder_and_output_apart(encoder: str, output: PathLike) -> None:
    """Refuse an encoder directory that is the output directory or inside it: a
    run replaces its output before the first step, which would delete the
    encoder it starts from (and a resumed run could not find it). Refuse an
    output inside the encoder directory too: the encoder would hold another,
    copied and packaged with it, and, a pretrain output itself, could not be
    adapted again into itself."""
    if _inside(encoder, output):
        raise PretrainError(
            f"the encoder {encoder} is in the output directory {output}, which the run replaces: "
            "write to another directory (an adapted encoder can be adapted further into a new one)"
        )
    if Path(encoder).is_dir() and Path(output).resolve().is_relative_to(Path(encoder).resolve()):
        raise PretrainError(
            f"the output directory {output} is in the encoder {encoder}, which would then hold a second "
            "encoder: write to a directory outside it"
        )


def check_inputs_outside_output(inputs: Sequence[Tuple[str, PathLike]], output: PathLike) -> None:
    """Refuse text to read, as (option, path), in the output directory, which the run replaces."""
    for option, path in inputs:
        if _inside(path, output):
            raise PretrainError(
                f"{option} {path} is in the output directory {output}, which the run replaces: "
                "move it out, or write to another directory"
            )


def save_checkpoint(output: Path, model: Any, tokenizer: Any, optimizer: Any, scheduler: Any,
                     rng: MaskingRNG, state: Dict[str, Any]) -> None:
    """Write the checkpoint next to the old one, then swap, so that an
    interruption while saving leaves the previous checkpoint intact."""
    final = output / CHECKPOINT_DIR
    tmp = output / CHECKPOINT_TMP
    old = output / CHECKPOINT_OLD
    remove_stale_checkpoints(output)
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


def remove_stale_checkpoints(output: Path) -> None:
    """Delete a checkpoint left half-written (`CHECKPOINT_TMP`) or replaced (`CHECKPOINT_OLD`)."""
    for name in (CHECKPOINT_TMP, CHECKPOINT_OLD):
        if (output / name).exists():
            shutil.rmtree(output / name)


def remove_checkpoint(output: Path) -> None:
    """Delete the checkpoint of a finished run, and any stale one. It is renamed
    `CHECKPOINT_TMP` first, which no run resumes from, then deleted: an
    interruption leaves no half-deleted `checkpoint/` behind, and the next run
    or `--resume` of this one removes what is left."""
    remove_stale_checkpoints(output)
    if (output / CHECKPOINT_DIR).exists():
        (output / CHECKPOINT_DIR).rename(output / CHECKPOINT_TMP)
    remove_stale_checkpoints(output)


def read_checkpoint_state(output: Path) -> Optional[Dict[str, Any]]:
    final, old = output / CHECKPOINT_DIR, output / CHECKPOINT_OLD
    if not final.exists() and (old / _STATE_FILE).is_file():
        old.rename(final)  # interrupted between the two renames of save_checkpoint
    path = final / _STATE_FILE
    return json.loads(path.read_text(encoding="utf8")) if path.is_file() else None


def load_checkpoint_file(path: Path, **kwargs: Any) -> Any:
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


def finished_results(output: Path) -> Optional[Dict[str, Any]]:
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
        return cls(_canonical(dict(state["settings"], total_steps=state.get("total_steps"))), state["data"])

    @classmethod
    def of_results(cls, results: Dict[str, Any]) -> "RunRecord":
        """The run a results file records."""
        identity = dict(results.get("settings", {}), base_encoder=results.get("base_encoder"),
                        sequence_length=results.get("sequence_length"), total_steps=results.get("total_steps"))
        return cls(_canonical(identity), results.get(DATA_FINGERPRINT), results.get("text"))


def run_identity(settings: PretrainSettings, base_encoder: str, sequence_length: int,
                 n_steps: int) -> Dict[str, Any]:
    """What a run must share with a recorded one to be the same run, besides its
    packed text: the settings compared, the encoder it resolved to, the length
    of its sequences, its number of steps (`--epochs 1` is the default, and the
    `--steps` of one epoch)."""
    return _canonical(dict(settings.identity(), base_encoder=base_encoder, sequence_length=sequence_length,
                           total_steps=n_steps))


def _canonical(identity: Dict[str, Any]) -> Dict[str, Any]:
    """`identity` with its encoder folder as its resolved path, however it was spelt (a hub name as it is)."""
    encoder = identity.get("base_encoder")
    if isinstance(encoder, str) and Path(encoder).is_dir():
        identity = dict(identity, base_encoder=str(Path(encoder).resolve()))
    return identity


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
        raise OtherRun(
            f"cannot resume {output}: this run differs from its {what} ({'; '.join(differences)}); {START_AFRESH}",
            what, differences,
        )


def check_finished_files(output: Path, results: Dict[str, Any]) -> None:
    """Refuse a finished run (`OtherRun`, so that --restart-if-changed trains it again) whose
    encoder's files, listed in its results, are not all in `output` (one deleted by hand)."""
    missing = [name for name in results.get("files", []) if not (output / name).exists()]
    if missing:
        raise OtherRun(f"cannot resume {output}: its finished run's {', '.join(missing)} "
                       f"{'is' if len(missing) == 1 else 'are'} missing; {START_AFRESH}",
                       "finished run", [f"missing {', '.join(missing)}"])


def clear_output(output: Path) -> None:
    """Empty a previous pretraining output (checked by `check_output_dir`) of what a run
    wrote, but for its `RUN_MARKER`, written first: stopped halfway, it is still
    recognised, and the run that replaces it keeps the marker."""
    written = _written_by_a_run(output)
    mark_output(output)
    # The results first: a run stopped halfway through the rest leaves no finished run of missing files.
    (output / RESULTS_FILE).unlink(missing_ok=True)
    for child in output.iterdir():
        if child.name == RUN_MARKER or not written(child.name):
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def mark_output(output: Path) -> None:
    """Mark `output` as a pretraining output from the start of a run (`RUN_MARKER`)."""
    output.mkdir(parents=True, exist_ok=True)
    marker = output / RUN_MARKER
    if not marker.exists():
        marker.write_text("The output of python -m spacy_bioner pretrain, which may replace it.\n", encoding="utf8")
