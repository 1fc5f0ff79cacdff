"""`export-tasks`: an annotation run's documents and entities as tasks to correct in an annotation tool."""

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from ..annotate.tasks import TOOLS, TasksError, export_tasks
from ..messages import counted
from ._util import app, check_output_file, fail, given_options, refuse_outputs_read

# The annotation tools whose tasks export-tasks writes, as choices of --tool.
AnnotationTool = Enum("AnnotationTool", {name.replace("-", "_"): name for name in TOOLS}, type=str)

# What to do with the tasks: import them, correct them, convert the tool's export back (with {key}: where
# the heads find the entities).
_NEXT_STEPS = {
    "label-studio": "import it into a Label Studio project (--config: one with these labels; Label Studio does not "
                    "check predictions against its labeling config), correct the predictions, export JSON and "
                    "convert it: python -m spacy_bioner convert label-studio EXPORT.json OUT.spacy --id-key doc_id "
                    "{key}",
    "prodigy": "correct them with prodigy ner.manual DATASET MODEL OUTPUT --label ... (MODEL: the run's pipeline, "
               "whose tokens the spans fit), then convert prodigy db-out DATASET's JSON Lines: python -m "
               "spacy_bioner convert jsonl DB-OUT.jsonl OUT.spacy {key}",
    "doccano": "import it into a doccano sequence-labelling project (JSONL), correct the labels, export JSONL and "
               "convert it: python -m spacy_bioner convert jsonl EXPORT.jsonl OUT.spacy --entities-key label {key} "
               "(--entities-key entities where the export has start_offset and end_offset)",
}


@app.command("export-tasks")
def export_tasks_command(
    ctx: typer.Context,
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="The --output folder of an `annotate` run."),
    output: Path = typer.Argument(
        ..., metavar="OUTPUT", help="Tasks file: JSON (label-studio) or JSON Lines (prodigy, doccano)."
    ),
    tool: AnnotationTool = typer.Option(
        ..., "--tool", help="label-studio (tasks with the entities as predictions, each with its score, the least "
        "sure tasks first in its Data Manager), prodigy (ner.manual's spans) or doccano (sequence labelling)."
    ),
    spans_key: Optional[str] = typer.Option(
        None, "--spans-key", help="The entities of this head alone (default: doc.ents, every head's without "
        "overlaps)."
    ),
    from_name: str = typer.Option(
        "label", "--from-name", help="label-studio: the name of the project's <Labels> control."
    ),
    to_name: str = typer.Option("text", "--to-name", help="label-studio: the name of the project's <Text> object."),
    config: Optional[Path] = typer.Option(
        None, "--config", help="label-studio: also write a labeling config for a new project, with the "
        "pipeline's labels (those of its meta.json, and those found)."
    ),
) -> None:
    """Write an annotate run's documents, with the pipeline's entities pre-highlighted, as tasks to correct
    in Label Studio, Prodigy or doccano (model-assisted labelling); the corrected export converts back
    for training with `convert`. Rejected records are left out."""
    given = [param.opts[0] for param in given_options(ctx, ("config", "from_name", "to_name"))]
    if tool.value != "label-studio" and given:
        raise fail(f"{', '.join(given)}: for --tool label-studio only, not {tool.value}")
    check_output_file(output, "OUTPUT")
    if config is not None:
        check_output_file(config, "--config")
        if config.resolve() == output.resolve():
            raise fail("--config must differ from OUTPUT")
    # Its tables are read as whole folders (pyarrow): a file among them would break the run.
    refuse_outputs_read({"OUTPUT": output, "--config": config}, {"RUN_DIR": run_dir}, "export-tasks")
    try:
        exported = export_tasks(run_dir, output, tool.value, spans_key=spans_key, from_name=from_name,
                                to_name=to_name, config=config)
    except TasksError as e:
        raise fail(str(e)) from None
    except OSError as e:
        raise fail(f"cannot write {e.filename or output}: {e.strerror or e}; nothing written") from None
    if not exported.complete:
        typer.echo(f"Warning: the run in {run_dir} has not finished (its summary.json does not say complete): "
                   "the tasks hold the documents of its finished shards", err=True)
    typer.echo(f"Wrote {output}: {counted(exported.tasks, 'task')} with "
               f"{counted(sum(exported.entities.values()), 'entity', 'entities')}"
               + (f" ({counted(exported.rejected, 'rejected record')} left out)" if exported.rejected else ""))
    for label, count in sorted(exported.entities.items()):
        typer.echo(f"  {label:30} {count}")
    if config is not None:
        typer.echo(f"Wrote {config}: a Label Studio labeling config with the labels {', '.join(exported.labels)}")
    # doc.ents alone trains every head on its own labels; one head's spans go back under its key.
    key = "--ents-only" if spans_key is None else f"--spans-key {spans_key}"
    typer.echo(f"Next: {_NEXT_STEPS[tool.value].format(key=key)}")
