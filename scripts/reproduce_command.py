"""Write the command line that reproduces a trained pipeline, which `evaluate`
(metrics/scores.md) and `package` (the model card) record, after a line that
names the pipeline it trained (its SHA-256), so that they refuse the file for
a pipeline trained since by another command:

    python scripts/reproduce_command.py [--pretraining FILE] OUTPUT PIPELINE COMMAND...

COMMAND is the workflow's command line with the vars the pipeline depends on,
as the training command ran. Two of them are written as the run resolved them:

- the encoder (`--vars.transformer`): where the run used an installed encoder
  package, the offline fallback, that package, which `--vars.transformer`
  accepts by name (a hub name would train another encoder wherever the hub, or
  a cache of it, can be reached);
- with `--pretraining` (the adapted workflow), the encoder and the epochs
  (`--vars.pretrain_epochs`) of the pretraining run that made the encoder,
  from its pretraining.json, which may have run with other vars. A run the
  workflow's `pretrain` command cannot repeat (`--steps`, another setting it
  leaves at its default, other text, `--keep-eval-text`, `--no-task-text`) is
  refused: no command reproduces it.
"""

import argparse
import hashlib
import json
import shlex
from pathlib import Path
from typing import Any, Dict, List, Optional

import srsly

from spacy_bioner.files import update_digest
from spacy_bioner.cli._util import PIPELINE_LINE
from spacy_bioner.packaging import describe_encoder, pipeline_sha256
from spacy_bioner.pretraining import PretrainSettings


def encoder_package(pipeline: Path) -> Optional[str]:
    """The encoder package the pipeline in `pipeline` was trained on, if it was one."""
    meta = json.loads((pipeline / "meta.json").read_text(encoding="utf8"))
    return next((s.get("package") for s in meta.get("sources", []) if s.get("encoder")), None)


def with_var(command: List[str], name: str, value: str) -> List[str]:
    """`command` with `--vars.NAME` set to `value` (added where it is not given)."""
    option = f"--vars.{name}"
    if option not in command:
        return command + [option, value]
    at = command.index(option) + 1
    return command[:at] + [value] + command[at + 1:]


def pretrain_epochs(path: Path, record: Dict[str, Any], project_dir: Path = Path(".")) -> str:
    """The workflow's `pretrain_epochs` of a pretraining run: its `--epochs` (1 by default).
    A run the workflow's `pretrain` command cannot repeat: SystemExit, saying why and how to
    pretrain as it does. That command gives the encoder, its fallback, the epochs and the text
    (project.yml), and leaves every other setting at its default."""
    settings = record.get("settings", {})
    how = ("so no command would reproduce this pipeline; pretrain it as the workflow does (spacy project run "
           "pretrain), or train it with `train` and --vars.transformer naming that encoder")
    if settings.get("steps") is not None:
        raise SystemExit(
            f"{path}: the encoder was pretrained with --steps {settings['steps']}, which the workflow's "
            f"pretrain command (--epochs ${{vars.pretrain_epochs}}) cannot repeat, {how}"
        )
    defaults = PretrainSettings(encoder="").identity()
    other = [f"{name} {settings[name]} (default {value})" for name, value in defaults.items()
             if name in settings and settings[name] != value]
    text = record.get("text")
    if text is not None:
        files = [source for source in text if "md5" in source]  # the task text has none
        if [source["md5"] for source in files] != workflow_text_md5s(project_dir):
            other.append("other text than the workflow's --text")
        if any(source.get("dropped_eval_lines", 0) is None for source in files):
            other.append("--keep-eval-text")
        if len(files) == len(text):
            other.append("--no-task-text")
    if other:
        raise SystemExit(f"{path}: the encoder was pretrained with {', '.join(other)}, which the workflow's "
                         f"pretrain command does not pass, {how}")
    epochs = settings.get("epochs") or 1
    return str(int(epochs) if float(epochs).is_integer() else epochs)  # typer reads --epochs 1 as 1.0


def workflow_text_md5s(project_dir: Path) -> List[str]:
    """The MD5 of each `--text` file of project.yml's `pretrain` command, as pretraining.json records them."""
    commands = srsly.read_yaml(project_dir / "project.yml")["commands"]
    args = shlex.split(" ".join(next(c for c in commands if c["name"] == "pretrain")["script"]))
    files = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "--text"]
    return [update_digest(hashlib.md5(), project_dir / name).hexdigest() for name in files]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="Where the command line goes (training/reproduce.txt).")
    parser.add_argument("pipeline", type=Path, help="The trained pipeline (training/model-best).")
    parser.add_argument("--pretraining", type=Path, help="The adapted encoder's pretraining.json.")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="The workflow's command line.")
    args = parser.parse_args()
    command = list(args.command)
    if args.pretraining is not None:
        record = json.loads(args.pretraining.read_text(encoding="utf8"))
        package = describe_encoder(record["base_encoder"]).get("package")
        command = with_var(command, "transformer", package or record["requested_encoder"])
        command = with_var(command, "pretrain_epochs", pretrain_epochs(args.pretraining, record))
    else:
        package = encoder_package(args.pipeline)
        if package:
            command = with_var(command, "transformer", package)
    # The pipeline it trained: evaluate and package-meta refuse the file for another one.
    args.output.write_text(f"{PIPELINE_LINE}{pipeline_sha256(args.pipeline)}\n{shlex.join(command)}\n", encoding="utf8")


if __name__ == "__main__":
    main()
