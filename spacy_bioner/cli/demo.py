"""`demo`: load a pipeline and print what it finds in a sample abstract."""

from typing import Optional

import typer

from ._util import GPU_ID, PRECISION, Precision, app, load_pipeline, score_text

SAMPLE_ABSTRACT = (
    "Naloxone reverses the antihypertensive effect of clonidine. In unanesthetized, "
    "spontaneously hypertensive rats the decrease in blood pressure and heart rate produced "
    "by intravenous clonidine was inhibited by naloxone. Interleukin-2 (IL-2) induces the "
    "expression of the IL-2 receptor alpha gene and activates NF-kappa B in human T cells "
    "and in the Jurkat cell line, whereas c-fos mRNA levels were unchanged."
)


@app.command()
def demo(
    model: str = typer.Argument("en_bioner_scibert", metavar="MODEL", help="Trained pipeline: directory or installed package name."),
    text: str = typer.Option(
        SAMPLE_ABSTRACT, "--text", help="Text to annotate (default: a sample abstract).", show_default=False
    ),
    gpu_id: int = GPU_ID,
    precision: Optional[Precision] = PRECISION,
) -> None:
    """Load a pipeline and print the entities it finds in a sample abstract."""
    from ..annotation import head_keys, spans_with_scores
    from ..packaging import pipeline_encoder

    nlp = load_pipeline(model, gpu_id, precision)
    doc = nlp(text)
    typer.echo(f"{model} {nlp.meta.get('version', '')}: {nlp.pipe_names}")
    typer.echo(f"encoder: {pipeline_encoder(nlp)}")
    typer.echo(f"text: {text}")
    typer.echo(f"doc.ents ({len(doc.ents)}):")
    for ent in doc.ents:
        typer.echo(f"  {ent.text!r:40} {ent.label_}")
    for key in head_keys(nlp):
        spans = list(spans_with_scores(doc, key))
        typer.echo(f"doc.spans[{key!r}] ({len(spans)}):")
        for span, score in spans:
            typer.echo(f"  {span.text!r:40} {span.label_:10} {score_text(score)}")
