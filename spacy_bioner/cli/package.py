"""`package-meta`: the meta.json that `spacy package --meta-path` builds the package from."""

import json
from pathlib import Path
from typing import List, Optional

import typer

from ._util import (
    COMMAND_FILE,
    app,
    check_input_file,
    check_output_file,
    command_text,
    fail,
    log,
    named_values,
    refuse_outputs_read,
    write_output_text,
)


@app.command("package-meta")
def package_meta_cli(
    model_dir: Path = typer.Argument(
        ..., metavar="MODEL_DIR", help="Trained pipeline directory (training/model-best)."
    ),
    project_meta: Path = typer.Argument(
        ..., metavar="PROJECT_META", help="The project's metadata (configs/meta.json): name, description, "
        "license, sources, notes."
    ),
    output: Path = typer.Argument(..., metavar="OUTPUT", help="Where the merged meta.json goes."),
    metrics_dir: Path = typer.Option(
        Path("metrics"), "--metrics", help="Metrics written by `evaluate`, with the scores of every head."
    ),
    command: str = typer.Option("", "--command", help="The command that produced the scores, for the model card."),
    command_file: Optional[Path] = COMMAND_FILE,
    performance: List[str] = typer.Option(
        [], "--performance", metavar="KEY=CORPUS",
        help="For a head evaluated on several test corpora: the corpus whose scores fill meta.json's "
        "performance keys (e.g. bc5cdr=bc5cdr-iob). Repeatable.",
    ),
) -> None:
    """Write the meta.json for `spacy package`: the pipeline's, the project's and the measured scores.

    Merges a trained pipeline's meta.json with the project's metadata, this
    library's version and requirement, and the measured test scores (spaCy's
    `performance` keys); then run `spacy package MODEL_DIR packages --meta-path OUTPUT`.
    """
    from ..packaging import package_meta, read_json

    command = command_text(command, command_file, model_dir)
    primary = dict(named_values(performance, "--performance", "KEY=CORPUS"))
    if not (model_dir / "meta.json").exists():
        raise fail(f"{model_dir} is not a trained pipeline (no meta.json)")
    check_input_file(project_meta, "PROJECT_META")
    refuse_outputs_read({"OUTPUT": output}, {"PROJECT_META": project_meta, "MODEL_DIR": model_dir,
                                             "--metrics": metrics_dir, "--command-file": command_file},
                        "package-meta")
    check_output_file(output, "OUTPUT")
    try:
        project = read_json(project_meta)
        if not isinstance(project, dict):
            raise ValueError(f"{project_meta}: not a JSON object (name, description, license, ...)")
        meta = package_meta(model_dir, project, metrics_dir, command, primary)
    except (OSError, ValueError) as e:
        raise fail(str(e)) from None
    if project.get("version", meta["version"]) != meta["version"]:
        typer.echo(f"Warning: {project_meta}: its version {project['version']!r} is not used: a packaged pipeline "
                   f"takes the library's, {meta['version']} (spacy_bioner/about.py), which it requires. pip keeps an "
                   "installed pipeline of the same version: reinstall a retrained one with pip install "
                   "--force-reinstall, or give it another name", err=True)
    write_output_text(output, json.dumps(meta, indent=2))
    log(f"wrote {output} ({meta['lang']}_{meta['name']} {meta['version']}): {meta['description']}")
