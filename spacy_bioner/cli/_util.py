"""The typer app and what every command shares: errors, logging, loading."""

import contextlib
import os
import time
import warnings
from enum import Enum
from pathlib import Path
from typing import Collection, Dict, Iterator, List, Optional, Tuple

import click
import typer
from spacy.language import Language

from ..loading import LOAD_PRECISIONS

app = typer.Typer(
    name="spacy_bioner",
    help="Biomedical named-entity recognition for spaCy: corpus conversion, evaluation, "
    "packaging and annotation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(given: bool) -> None:
    if given:
        from ..about import __version__

        typer.echo(f"spacy-bioner {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Biomedical named-entity recognition for spaCy: corpus conversion, evaluation,
    packaging and annotation."""


def fail(message: str) -> typer.Exit:
    """Print `Error: message` on stderr; raise the returned exit (status 1)."""
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(1)


def score_text(score: Optional[float]) -> str:
    """A span's score for printing: three decimals, or "-" where the head gives none."""
    return "-" if score is None else f"{score:.3f}"


def log(text: str, err: bool = False) -> None:
    """A progress line with the time of day (on stderr with `err`)."""
    typer.echo(f"[{time.strftime('%H:%M:%S')}] {text}", err=err)


@contextlib.contextmanager
def warnings_on_stderr() -> Iterator[None]:
    """Print the library's warnings as `Warning: message` lines on stderr, without Python's source line."""
    def show(message, category, filename, lineno, file=None, line=None) -> None:  # type: ignore[no-untyped-def]
        typer.echo(f"Warning: {message}", err=True)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def given_options(ctx: typer.Context, names: Collection[str]) -> List[click.Parameter]:
    """The parameters among `names` that the invocation gave (not left at their defaults), in the
    command's order."""
    # By the source's name: typer may bundle a click of its own, with its own ParameterSource.
    return [param for param in ctx.command.params
            if param.name in names and ctx.get_parameter_source(param.name).name != "DEFAULT"]


GPU_ID = typer.Option(-1, "--gpu-id", help="GPU to run on; -1 for the CPU.")

# --precision's choices: the precisions load_pipeline gives a pipeline's encoder.
Precision = Enum("Precision", {name: name for name in LOAD_PRECISIONS}, type=str)  # type: ignore[misc]

PRECISION = typer.Option(
    None, "--precision", metavar="<precision>", show_default=False,
    help="The encoder's precision in place of the pipeline's own (float32 unless it was trained otherwise): "
    "bfloat16 (autocast; needs a CPU with avx512_bf16 or amx_bf16, or a GPU of compute capability 8.0 or "
    "later): faster, its entities and scores a little different from float32's (README: Using the "
    "pipeline); or float32.",
)


def load_pipeline(model: str, gpu_id: int = -1, precision: Optional[Precision] = None) -> Language:
    """spacy.load on the CPU or GPU `gpu_id`, the encoder at `precision` if given; a one-line
    error if it cannot load or has no NER head (every command that loads one runs its heads)."""
    from ..loading import PipelineLoadError
    from ..loading import load_pipeline as load

    try:
        return load(model, gpu_id, need_heads=True, precision=None if precision is None else precision.value)
    except PipelineLoadError as e:
        raise fail(str(e)) from None


def named_values(values: List[str], option: str, metavar: str = "NAME=VALUE") -> List[Tuple[str, str]]:
    """NAME=VALUE option values, each name once."""
    named: List[Tuple[str, str]] = []
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise fail(f"{option} takes {metavar}, got {value!r}")
        if name in dict(named):
            raise fail(f"{option}: {name} given twice")
        named.append((name, rest))
    return named


def named_corpora(values: List[str], option: str) -> List[Tuple[str, Path]]:
    """NAME=PATH option values, each path checked to be a corpus (`check_input_corpus`)."""
    named = []
    for name, path in named_values(values, option, "NAME=PATH"):
        check_input_corpus(Path(path), f"{option} {name}")
        named.append((name, Path(path)))
    return named


def check_input_corpus(path: Path, what: str) -> None:
    """Refuse a .spacy corpus that is missing, or a folder of no .spacy file (`docbin_files`); a file
    that is no DocBin is refused when read."""
    from ..corpora import docbin_files

    if not path.exists():
        raise fail(f"{what}: no such file or folder: {path}")
    try:
        docbin_files(path)
    except ValueError as e:
        raise fail(f"{what}: {e}") from None


def check_input_file(path: Path, what: str) -> None:
    """Refuse an input that is missing or is not a file (a directory)."""
    if not path.is_file():
        raise fail(f"{what}: {'not a file' if path.exists() else 'no such file'}: {path}")


COMMAND_FILE = typer.Option(
    None, "--command-file", metavar="FILE", help="A file that holds that command (the project's "
    "training/reproduce.txt, which its train command writes); instead of --command."
)


# The line of a command file (the project's training/reproduce.txt) that names the pipeline
# its command trained, by `packaging.pipeline_sha256`.
PIPELINE_LINE = "# pipeline sha256 "


def command_text(command: str, command_file: Optional[Path], pipeline: Optional[Path] = None) -> str:
    """The command line given by --command or read from --command-file (one of them).

    A command file that names the pipeline its command trained (`PIPELINE_LINE`) is refused for
    another `pipeline` (one trained since by another command): its command did not make it."""
    if command_file is None:
        return command
    if command:
        raise fail("--command and --command-file both give the command: give one of them")
    check_input_file(command_file, "--command-file")
    try:
        lines = command_file.read_text(encoding="utf8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise fail(f"--command-file {command_file}: cannot be read as UTF-8 text: {e}") from None
    digests = [line[len(PIPELINE_LINE):].strip() for line in lines if line.startswith(PIPELINE_LINE)]
    if not digests and pipeline is not None:
        typer.echo(
            f"Warning: --command-file {command_file} names no pipeline its command trained (written before "
            f"spacy-bioner wrote one): its command is recorded for {pipeline} unchecked. Train through the "
            "project again (spacy project run train --force) to have it checked, or give the command with --command.",
            err=True,
        )
    if digests and pipeline is not None and (Path(pipeline) / "config.cfg").is_file():
        from ..packaging import pipeline_sha256

        if digests[-1] != pipeline_sha256(Path(pipeline)):
            raise fail(
                f"--command-file {command_file}: its command trained another pipeline than {pipeline} (trained "
                "since by another command, a `spacy train` of its own?): train it through the project (other "
                "settings in a config of their own: spacy project run all . --vars.config NAME), which writes the "
                "file, or give the command that trained it with --command"
            )
    return " ".join(" ".join(line for line in lines if not line.startswith("#")).split())


def _nearest_existing(path: Path, what: str) -> Path:
    """`path` (absolute) or its nearest ancestor that exists; a one-line error
    naming `what` where the path cannot even be looked at (a name too long)."""
    try:
        existing = path.absolute()
        while not existing.exists():
            existing = existing.parent
        return existing
    except OSError as e:  # a name too long, say
        raise fail(f"{what} {path} cannot be written: {e.strerror or e}") from None


def pipeline_input(model: str) -> Dict[str, Optional[Path]]:
    """MODEL for `refuse_outputs_read` where it names a folder here, not an installed package."""
    return {"MODEL": Path(model)} if Path(model).is_dir() else {}


def refuse_outputs_read(outputs: Dict[str, Optional[Path]], inputs: Dict[str, Optional[Path]], reader: str) -> None:
    """Refuse an output (by its option's name) that is one of the files the command reads, or
    lies in one of the folders it reads."""
    read = {path.resolve(): name for name, path in inputs.items() if path is not None}
    for name, path in outputs.items():
        if path is None:
            continue
        if path.resolve() in read:
            raise fail(f"{name} is {read[path.resolve()]}: writing it would replace a file {reader} reads")
        folder = next((read[p] for p in path.resolve().parents if p in read and p.is_dir()), None)
        if folder is not None:
            raise fail(f"{name} is in {folder}, which {reader} reads: write it elsewhere")


def check_output_file(path: Path, what: str, hint_for_folder: str = "") -> None:
    """Refuse, before any work is done, an output file that could not be written:
    a directory (the message ending in `hint_for_folder`, where a folder could be written), or a
    path whose nearest existing parent is not a writable directory."""
    parent = _nearest_existing(path, what)
    if parent == path.absolute():  # the path exists
        if parent.is_dir():
            raise fail(f"{what} {path} is a directory; give a file name" + hint_for_folder)
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise fail(f"{what} {path} cannot be written: {parent} is not a writable directory")


def check_output_dir(path: Path, what: str) -> None:
    """Refuse, before any work is done, an output folder that could not be written:
    an existing file, or a path whose nearest existing folder is not writable."""
    existing = _nearest_existing(path, what)
    if existing == path.absolute() and not existing.is_dir():
        raise fail(f"{what} {path} is a file, not a folder; give a folder")
    if not existing.is_dir():
        raise fail(f"{what} {path} cannot be made: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise fail(f"{what} {path} cannot be written: {existing} is not a writable folder")


def write_output_text(path: Path, text: str) -> None:
    """Write `text` to `path` whole or not at all (its folder made); a one-line error where it cannot."""
    from ..files import atomic_write

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf8"))
    except OSError as e:
        raise fail(f"cannot write {path}: {e}") from None
