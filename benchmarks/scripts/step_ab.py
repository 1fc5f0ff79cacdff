"""Whether a change to functions of the package changes the CPU training
step, measured in one process, so that the drift of a shared machine hits
both sides alike.

    git worktree add /tmp/base REV
    python scripts/step_ab.py /tmp/base --swap spacy_bioner.layers.crf:forward_backward   # from benchmarks/

Runs of one commit by `step_overhead.py`, a process each, differ by up to a
third on the 2-core machine (other tenants of its cores), more than the
changes it is asked about. Here the pipeline of `step_overhead.py` (JNLPBA,
the CRF head, a 1-layer 8-wide BERT) trains one untimed pass over its
batches; then each batch is trained on `--rounds` times more, alternating
from batch to batch between the base tree's version of each `--swap`
function and the working tree's. The result is the paired difference of
step time per batch (working tree minus base), and the time spent inside
the swapped functions on each side.

A swap names a module-level function or class (`module:name`). A function
is replaced wherever the package holds it (every module that imported it by
name); a class takes the methods of its base version. The base versions are
loaded from the base tree's files into the working tree's package, so what
they import is the working tree's, with the other swaps applied.
"""

import importlib.util
import inspect
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional, Tuple

import typer

from run import BENCHMARKS, DEFAULT_CONFIG, DEFAULT_ENCODER, check_corpus, device_name, log, versions, write_json
from spacy_bioner.encoders import resolve_encoder
from step_overhead import tiny_encoder, training_setup

app = typer.Typer(add_completion=False)
SIDES = ("base", "working")


def base_module(base_tree: Path, module_name: str) -> ModuleType:
    """The base tree's file of `module_name`, loaded once into the working
    tree's package as `<module_name>__base` (so that a swapped function it
    imported is swapped there too)."""
    key = f"{module_name}__base"
    if key not in sys.modules:
        path = base_tree.joinpath(*module_name.split(".")).with_suffix(".py")
        if not path.exists():
            raise typer.BadParameter(f"{path} does not exist: is {base_tree} a tree of this repository?", param_hint="--swap")
        spec = importlib.util.spec_from_file_location(key, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def call_sites(function: Callable) -> List[Tuple[Any, str]]:
    """Every (module, attribute) of the package that holds `function`."""
    return [
        (module, name)
        for module_name, module in list(sys.modules.items())
        if module_name.split(".")[0] == "spacy_bioner"
        for name, value in vars(module).items()
        if value is function
    ]


def timed(function: Callable, seconds: List[float]) -> Callable:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        result = function(*args, **kwargs)
        seconds.append(time.perf_counter() - start)
        return result

    return wrapper


def commit_of(tree: Path) -> str:
    described = subprocess.run(
        ["git", "-C", str(tree), "describe", "--always", "--dirty"], capture_output=True, text=True, check=False
    )
    return described.stdout.strip() or "unknown"


# An attribute one side does not have.
ABSENT = object()


@dataclass
class Swap:
    """One `--swap`: each (holder, attribute) to set, with its value on each
    side, the callables timed into `seconds` by (label, side).

    A function is set wherever the package holds it; a class keeps its
    identity (the pipeline's instances are of it) and takes the methods its
    base version defines."""

    name: str
    patches: List[Tuple[Any, str, Dict[str, Any]]]
    seconds: Dict[Tuple[str, str], List[float]]

    @classmethod
    def of(cls, base_tree: Path, swap: str) -> "Swap":
        module_name, _, name = swap.partition(":")
        working = getattr(importlib.import_module(module_name), name)
        base = getattr(base_module(base_tree, module_name), name)
        seconds: Dict[Tuple[str, str], List[float]] = {}

        def sides(label: str, base_value: Any, working_value: Any) -> Dict[str, Any]:
            values = {"base": base_value, "working": working_value}
            return {
                side: timed(value, seconds.setdefault((label, side), [])) if callable(value) else value
                for side, value in values.items()
            }

        if isinstance(working, type):
            methods = sorted(k for k, v in {**vars(base), **vars(working)}.items() if inspect.isfunction(v))
            patches = [
                (working, method, sides(f"{name}.{method}", vars(base).get(method, ABSENT), vars(working).get(method, ABSENT)))
                for method in methods
            ]
        else:
            versions = sides(name, base, working)
            patches = [(holder, attribute, versions) for holder, attribute in call_sites(working)]
        return cls(swap, patches, seconds)

    def use(self, side: str) -> None:
        for holder, attribute, values in self.patches:
            if values[side] is not ABSENT:
                setattr(holder, attribute, values[side])
            elif attribute in vars(holder):
                delattr(holder, attribute)

    def ms_inside(self) -> Dict[str, Dict[str, float]]:
        """Mean milliseconds a call, by function or method, of those called on both sides."""
        labels = {label for label, _ in self.seconds}
        return {
            label: {side: round(1000 * statistics.mean(self.seconds[label, side]), 2) for side in SIDES}
            for label in sorted(labels)
            if all(self.seconds.get((label, side)) for side in SIDES)
        }


@app.command()
def main(
    base_tree: Path = typer.Argument(..., exists=True, file_okay=False, help="A checkout of the base commit (git worktree add)."),
    swaps: List[str] = typer.Option(..., "--swap", help="module:function or module:Class to take from the base tree (repeatable)."),
    corpus_root: Path = typer.Option(BENCHMARKS / "corpus", help="Converted corpora: <root>/jnlpba/train.spacy."),
    config_path: Path = typer.Option(DEFAULT_CONFIG, "--config", help="The pipeline config to cut down."),
    tokenizer: str = typer.Option(DEFAULT_ENCODER, help="Whose tokenizer the tiny BERT uses (a path or a hub name)."),
    batch_words: int = typer.Option(8000, help="Training batch size in padded words."),
    batches: int = typer.Option(60, min=2, help="Training batches (at most one epoch's)."),
    rounds: int = typer.Option(4, min=2, help="Timed passes over the batches; each batch is timed rounds/2 times a side."),
    output: Optional[Path] = typer.Option(None, help="Also write the record here as JSON."),
) -> None:
    """Time training steps with functions of the base tree against the working tree's, batch by batch."""
    step_ms: Dict[Tuple[int, str], List[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        encoder = tiny_encoder(resolve_encoder(tokenizer, DEFAULT_ENCODER), Path(tmp) / "tiny-bert")
        nlp, train_batches, train_step = training_setup(check_corpus(corpus_root, "jnlpba", ("train",)), encoder, True,
                                                        batch_words, batches, config_path)
        for batch in train_batches:  # first sight, untimed
            train_step(batch)
        # After the pipeline is built, when every module that imports a swapped function is loaded.
        for swap in swaps:  # every base module first, so that each function swap finds them all
            base_module(base_tree, swap.partition(":")[0])
        patches = [Swap.of(base_tree, swap) for swap in swaps]
        for round_ in range(rounds):
            for i, batch in enumerate(train_batches):
                side = SIDES[(i + round_) % 2]
                for patch in patches:
                    patch.use(side)
                start = time.perf_counter()
                train_step(batch)
                step_ms.setdefault((i, side), []).append(1000 * (time.perf_counter() - start))
    n = len(train_batches)
    differences = [statistics.mean(step_ms[i, "working"]) - statistics.mean(step_ms[i, "base"]) for i in range(n)]
    record = {
        "base": commit_of(base_tree),
        "working": commit_of(Path(__file__).parent),
        "swaps": swaps,
        "batches": n,
        "rounds": rounds,
        "batch_words": batch_words,
        "ms_per_step": {
            side: round(statistics.mean(t for i in range(n) for t in step_ms[i, side]), 1) for side in SIDES
        },
        "paired_difference_ms": {
            "mean": round(statistics.mean(differences), 1),
            "standard_error": round(statistics.stdev(differences) / n**0.5, 1),
            "median": round(statistics.median(differences), 1),
        },
        "ms_inside": {patch.name: patch.ms_inside() for patch in patches},
        "device": device_name(-1),
        "versions": versions(),
    }
    log(
        f"{record['ms_per_step']['base']} ms/step (base, {record['base']}) against {record['ms_per_step']['working']} "
        f"(working, {record['working']}); paired difference {record['paired_difference_ms']}; inside {record['ms_inside']}"
    )
    if output is not None:
        write_json(output, record)
        log(f"wrote {output}")


if __name__ == "__main__":
    app()
