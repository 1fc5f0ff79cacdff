"""spacy-bioner: biomedical named-entity recognition for spaCy.

Everything is registered through entry points (see setup.py), so spaCy finds
the `bio_ner` factory, architectures, losses, readers and scorers without a
`--code` file.
"""

from .about import __version__

__all__ = ["__version__"]
