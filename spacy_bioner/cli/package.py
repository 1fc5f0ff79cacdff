"""`prepare-package`: a trained pipeline plus its scores, ready for `spacy package`."""

from pathlib import Path

import typer

from ._util import app, fail, log


@app.command("prepare-package")
def prepare_package_cli(
    model_dir: Path = typer.Argument(..., help="Trained pipeline directory (training/model-best)."),
    output_dir: Path = typer.Argument(..., help="Where the package input (pipeline + meta + README) goes."),
    metrics_dir: Path = typer.Option(Path("metrics"), "--metrics", help="Metrics written by `evaluate`."),
    name: str = typer.Option("bioner_scibert", "--name", help="Package name without the language prefix."),
    version: str = typer.Option("0.1.0", "--version", help="Package version."),
    command: str = typer.Option("", "--command", help="The command that produced the scores, for the card."),
) -> None:
    """Copy a trained pipeline with a package meta.json and a README model card.

    meta.json gets the name, version, requirements (spacy-bioner,
    spacy-transformers), the encoder used (sources, description) and the
    measured test scores; README.md is the model card. Then run
    `spacy package OUTPUT_DIR packages --build sdist,wheel`.
    """
    from ..packaging import prepare_package

    if not (model_dir / "meta.json").exists():
        raise fail(f"{model_dir} is not a trained pipeline (no meta.json)")
    try:
        meta = prepare_package(model_dir, metrics_dir, output_dir, name, version, command)
    except ValueError as e:
        raise fail(str(e)) from None
    log(f"wrote {output_dir} ({meta['lang']}_{meta['name']} {meta['version']}): {meta['description']}")
