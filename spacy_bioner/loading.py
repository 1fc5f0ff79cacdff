"""Loading a trained pipeline on the CPU or a GPU, with one error for what goes wrong.

Every command that runs a pipeline (`evaluate`, `visualize`, `demo`,
`annotate` and its workers) loads it here, so they all refuse a missing
pipeline, a missing GPU or a pipeline without heads with the same message.
"""

from pathlib import Path
from typing import Optional

from spacy.language import Language

from .annotation import head_keys
from .messages import first_line


class PipelineLoadError(ValueError):
    """The pipeline cannot be loaded or used; the message says what to do."""


def load_pipeline(model: str, gpu_id: int = -1, need_heads: bool = False) -> Language:
    """`spacy.load(model)` on GPU `gpu_id` (-1: the CPU).

    Raises PipelineLoadError when the GPU cannot be used, the pipeline cannot
    be loaded, or, with `need_heads`, it has no NER head (a component with a
    `spans_key` and tags, as `bio_ner` has).
    """
    import spacy

    if gpu_id >= 0:
        try:
            spacy.require_gpu(gpu_id)
        except ValueError as e:  # no CuPy, or no such GPU
            raise PipelineLoadError(f"--gpu-id {gpu_id}: {e}; use -1 for the CPU") from None
    try:
        nlp = spacy.load(model)
    except (OSError, ValueError) as e:
        raise PipelineLoadError(
            f"cannot load pipeline {model!r}: {first_line(e).rstrip('.')}. Give a trained pipeline's "
            "folder (e.g. training/model-best) or the name of an installed pipeline package (pip install "
            "the wheels that `spacy project run package` builds, see the README)"
        ) from None
    if need_heads and not head_keys(nlp):
        raise PipelineLoadError(
            f"{model!r} has no NER head (a bio_ner component): give a pipeline trained by this project "
            "(e.g. training/model-best) or its installed package"
        )
    return nlp


def pipeline_directory(model: str) -> Optional[Path]:
    """The directory `spacy.load(model)` reads, resolved; None where it loads an installed
    package (spaCy tries a package of that name before a directory)."""
    from spacy.util import is_package

    path = Path(model)
    return None if is_package(model) or not path.is_dir() else path.resolve()
