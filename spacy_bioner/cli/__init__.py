"""Command line: `python -m spacy_bioner COMMAND` (`--help` lists the commands).

One module per command (`evaluate.py` holds `evaluate` and `visualize`, which
score and show one pipeline on one corpus), each registering itself on the
shared typer `app`.
Errors in the input are reported as one line on stderr with a non-zero exit
status, never a traceback, and no output file is left behind.
"""

from . import annotate, convert, demo, evaluate, package, pretrain, tasks  # noqa: F401,E402  (register the commands)
from ._util import app

__all__ = ["app"]
