"""How far apart a trained head's emission scores lie: the range the CRF's
probability-space sums must hold (layers/crf.py falls back to log space past it).

    python scripts/emission_range.py PIPELINE corpus/bc5cdr-iob/dev.spacy --head bc5cdr --n-docs 300

For every token of the first `--n-docs` documents (retokenized by the
pipeline, as in prediction): the spread of its emission scores (best tag
minus worst) and the lead of its best tag over the best tag the scheme
allows after the decoded previous tag (0 where the best tag is allowed).
float32 products fail at a lead of about 40 nats.
"""

import json
from pathlib import Path
from typing import Optional

import numpy as np
import spacy
import typer
from run import versions
from spacy.tokens import DocBin

from spacy_bioner.annotation import head_keys
from spacy_bioner.tags import tag_constraints


def main(
    pipeline: Path = typer.Argument(..., help="A trained pipeline directory."),
    corpus: Path = typer.Argument(..., help="A DocBin whose texts are scored."),
    head: Optional[str] = typer.Option(None, help="The head's component name (default: the first head)."),
    n_docs: int = typer.Option(300, help="Documents scored."),
) -> None:
    """Print the spread and the lead of the head's emission scores, as JSON."""
    nlp = spacy.load(pipeline)
    name = head or next(iter(head_keys(nlp).values()))
    component = nlp.get_pipe(name)
    texts = [doc.text for doc in list(DocBin().from_disk(corpus).get_docs(nlp.vocab))[:n_docs]]
    upstream = [pipe for pipe_name, pipe in nlp.pipeline if pipe_name == "transformer"]
    docs = [nlp.make_doc(text) for text in texts]
    for pipe in upstream:
        docs = list(pipe.pipe(docs))
    scores = component.model.predict(docs)
    paths, _ = component.decoder(component.model.ops, scores)
    allowed = tag_constraints(component.tags).transitions == 0
    spreads, leads = [], []
    for emissions, path in zip(scores.emissions, paths):
        emissions = component.model.ops.to_numpy(emissions)
        spreads.extend(emissions.max(axis=1) - emissions.min(axis=1))
        for t in range(1, len(emissions)):
            leads.append(emissions[t].max() - emissions[t][allowed[path[t - 1]]].max())
    spreads, leads = np.asarray(spreads), np.asarray(leads)
    result = {
        "pipeline": str(pipeline), "corpus": str(corpus), "head": name, "documents": len(docs),
        "tokens": int(spreads.size),
        "spread": {"max": float(spreads.max()), "p99.9": float(np.percentile(spreads, 99.9)),
                   "median": float(np.median(spreads))},
        "lead": {"max": float(leads.max()), "tokens_led_by_a_forbidden_tag": int((leads > 0).sum())},
        "versions": versions(),
    }
    typer.echo(json.dumps(result, indent=2))


if __name__ == "__main__":
    typer.run(main)
