"""Command line: `python -m spacy_bioner COMMAND` (`--help` lists the commands).

One module per command, each registering itself on the shared typer `app`.
Errors in the input are reported as one line on stderr with a non-zero exit
status, never a traceback, and no output file is left behind.
"""

from ._util import app
from . import convert, evaluate, package, demo  # noqa: F401,E402  (register the commands)

__all__ = ["app"]
