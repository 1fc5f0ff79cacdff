"""Annotate a literature collection with a spacy-bioner pipeline (`python -m spacy_bioner annotate`).

- `sources`: readers for PubMed/MEDLINE XML, JSON Lines, `.txt` folders and
  Parquet, each turning an input into records and rejects;
- `engine`: the local engine (batched `nlp.pipe`, one or more CPU processes, GPU);
- `ray_engine`: the same on Ray Data (optional extra `spacy-bioner[ray]`);
- `output`: sharded entity/document/reject tables written atomically, resume;
- `run`: one run from inputs to `summary.json`.
"""

from .output import read_table
from .run import AnnotateError, Options, TooManyRejects, annotate

__all__ = ["annotate", "Options", "AnnotateError", "TooManyRejects", "read_table"]
