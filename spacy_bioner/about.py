"""The package version (the one place setup.py, `spacy_bioner.__version__` and
package-meta's meta.json read it from), and the versions a run records beside
its results."""

import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Dict

__version__ = "0.2.0"

# What a result depends on; a CuPy build is recorded where one is installed.
RECORDED_LIBRARIES = (
    "spacy", "thinc", "spacy-transformers", "transformers", "tokenizers", "torch", "seqeval",
    "cupy-cuda12x", "cupy-cuda13x",
)


def library_versions() -> Dict[str, str]:
    """Python's, this package's and each installed RECORDED_LIBRARIES version, for a run's record."""
    found = {"python": platform.python_version(), "spacy-bioner": __version__}
    for package in RECORDED_LIBRARIES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found
