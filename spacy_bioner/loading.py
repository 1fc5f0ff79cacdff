"""Loading a trained pipeline on the CPU or a GPU, its encoder at the precision it
was saved with or another, with one error for what goes wrong.

Every command that runs a pipeline (`evaluate`, `visualize`, `demo`,
`annotate` and its workers) loads it here, so they all refuse a missing
pipeline, a missing GPU or a pipeline without heads with the same message.
"""

import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from spacy.language import Language
from spacy.pipeline import SpanRuler

from .annotation import head_keys
from .messages import first_line

if TYPE_CHECKING:
    from .layers.transformer import BioTransformerModel

# The precisions a loaded pipeline's encoder may be given in place of its own:
# those measured (benchmarks/README.md, "bfloat16 in prediction").
LOAD_PRECISIONS = ("float32", "bfloat16")


class PipelineLoadError(ValueError):
    """The pipeline cannot be loaded or used; the message says what to do."""


def require_gpu(gpu_id: int, for_spacy: bool = True) -> None:
    """Check that GPU `gpu_id` is there and, with `for_spacy`, make it spaCy's (thinc's)
    device. ValueError saying why not, and to use -1 for the CPU: torch is asked first,
    since thinc blames a missing CuPy for a missing GPU."""
    import spacy
    import torch

    if not torch.cuda.is_available() or gpu_id >= torch.cuda.device_count():
        raise ValueError(f"no such GPU (torch sees {torch.cuda.device_count()}); use -1 for the CPU")
    if for_spacy:
        try:
            spacy.require_gpu(gpu_id)
        except ValueError as e:  # thinc: "Cannot use GPU, CuPy is not installed"
            raise ValueError(f"{e}; use -1 for the CPU") from None


def load_pipeline(
    model: str,
    gpu_id: int = -1,
    need_heads: bool = False,
    precision: Optional[str] = None,
    check_device: bool = True,
    need_entities: bool = False,
) -> Language:
    """`spacy.load(model)` on GPU `gpu_id` (-1: the CPU).

    precision: the shared transformer's precision in place of the one the
        pipeline was saved with (its `[components.transformer.model]
        precision`, a config override): "bfloat16" runs the encoder under
        bfloat16 autocast, "float32" without; None keeps the pipeline's.
    check_device: refuse "bfloat16" where the device has no bfloat16
        arithmetic; False where the pipeline is loaded here only to be
        inspected, and runs elsewhere (the Ray engine's driver).

    Raises PipelineLoadError when the GPU cannot be used, the pipeline cannot
    be loaded, or, with `need_heads`, it has no NER head (a component with a
    `spans_key` and tags, as `bio_ner` has); with `need_entities`, when it
    has neither a head nor a component that sets doc.ents (spaCy's `ner`, an
    entity ruler, a span ruler with `annotate_ents`); with `precision`, when the
    pipeline has no transformer of this package to set it on, or the device
    has no bfloat16 arithmetic for "bfloat16" (the shim would run float32
    with a warning: a run asked for bfloat16 must not silently be another).
    """
    import spacy
    from confection import ConfigValidationError

    if gpu_id >= 0:
        try:
            require_gpu(gpu_id)
        except ValueError as e:
            raise PipelineLoadError(f"--gpu-id {gpu_id}: {e}") from None
    if precision is not None and precision not in LOAD_PRECISIONS:
        raise PipelineLoadError(f"precision {precision!r}: use one of {', '.join(LOAD_PRECISIONS)}")
    overrides = {} if precision is None else {"components": {"transformer": {"model": {"precision": precision}}}}
    try:
        check_saved_shims(model)
        nlp = spacy.load(model, config=overrides)
    except (OSError, ValueError, pickle.UnpicklingError) as e:  # the last: torch refusing code in weights
        if precision is not None and isinstance(e, ConfigValidationError):
            # The saved config was valid: the override is what does not fit it.
            raise _no_precision_setting(model, precision) from None
        raise PipelineLoadError(
            f"cannot load pipeline {model!r}: {first_line(e).rstrip('.')}. Give a trained pipeline's "
            "folder (e.g. training/model-best) or the name of an installed pipeline package (pip install "
            "the wheels that `spacy project run package` builds, see the README)"
        ) from None
    if precision is not None:
        _check_precision(nlp, model, precision, check_device)
    if need_heads and not head_keys(nlp):
        raise PipelineLoadError(
            f"{model!r} has no NER head (a bio_ner component): give a pipeline trained by this project "
            "(e.g. training/model-best) or its installed package"
        )
    # A bio_ner head declares doc.ents too.
    if need_entities and not _sets_ents(nlp):
        raise PipelineLoadError(
            f"{model!r} has no component that finds entities (a bio_ner head, or one that sets doc.ents "
            f"such as spaCy's ner; its pipeline: {', '.join(nlp.pipe_names) or 'empty'}): give a pipeline "
            "trained by this project (e.g. training/model-best), its installed package, or another NER pipeline"
        )
    return nlp


def _sets_ents(nlp: Language) -> bool:
    """Whether an enabled component of the pipeline sets doc.ents: one whose factory declares it
    (its `assigns`), or a span ruler told to (`annotate_ents`), whose factory declares doc.spans only."""
    for name, pipe in nlp.pipeline:
        if "doc.ents" in nlp.get_pipe_meta(name).assigns or (isinstance(pipe, SpanRuler) and pipe.annotate_ents):
            return True
    return False


def _no_precision_setting(model: str, precision: str) -> PipelineLoadError:
    return PipelineLoadError(
        f"precision {precision!r}: {model!r} has no `transformer` component built by this package's "
        "spacy_bioner.Transformer (v2 or later), whose precision could be set; load it without a precision"
    )


def _bio_transformer(nlp: Language) -> Optional["BioTransformerModel"]:
    """The model of the pipeline's `transformer` component if this package's layer builds it, else None."""
    from .layers.transformer import BioTransformerModel

    model = nlp.get_pipe("transformer").model if "transformer" in nlp.component_names else None
    return model if isinstance(model, BioTransformerModel) else None


def encoder_precision(nlp: Language, effective: bool = True) -> Optional[str]:
    """The precision of the pipeline's shared transformer; None where this package's layer does not build it.

    effective: the precision it computes in on the device it is on now, float32 where it is set to
        bfloat16 but the device has no bfloat16 arithmetic, or to float16 off CUDA (the shim then runs
        float32, with a warning); False: the precision it is set to.
    """
    from .layers.encoder_shim import has_bfloat16_arithmetic

    encoder = _bio_transformer(nlp)
    if encoder is None:
        return None
    shim = encoder.encoder_shim
    if effective and shim.precision == "bfloat16" and not has_bfloat16_arithmetic(shim.device):
        return "float32"
    if effective and shim.precision == "float16" and shim.device.type != "cuda":
        return "float32"
    return shim.precision


def _check_precision(nlp: Language, model: str, precision: str, check_device: bool) -> None:
    encoder = _bio_transformer(nlp)
    if encoder is None:
        raise _no_precision_setting(model, precision)
    if check_device and encoder_precision(nlp) != precision:  # of the precisions a load sets, only bfloat16 falls back
        device = encoder.encoder_shim.device
        where = ("this CPU has no bfloat16 arithmetic (neither avx512_bf16 nor amx_bf16)" if device.type == "cpu"
                 else f"{device} has no bfloat16 arithmetic (compute capability below 8.0)")
        raise PipelineLoadError(
            f"precision 'bfloat16': {where}, and the encoder would run in float32 all the same; "
            "use float32, or leave the precision as the pipeline has it"
        )


def check_saved_shims(model: str) -> None:
    """Refuse, before spaCy loads it, a pipeline (folder or installed package) whose saved
    transformer tokenizer could write outside its folder or run code as it loads
    (`check_saved_tokenizer`), whatever layer saved it: spacy-transformers' own loads unchecked."""
    import srsly
    from spacy.util import get_package_path, is_package

    from .layers.encoder_shim import check_saved_tokenizer

    if is_package(model):
        folders = [path for path in get_package_path(model).iterdir() if (path / "config.cfg").is_file()]
    else:
        folders = [Path(model)] if Path(model).is_dir() else []
    for folder in folders:
        for saved in sorted(folder.glob("*/model")):
            try:
                shims = srsly.msgpack_loads(saved.read_bytes()).get("shims", [])
            except (ValueError, AttributeError, TypeError):  # not a thinc model's bytes: spaCy says what it is
                continue
            for shim_bytes in (data for node in shims for data in node):
                try:
                    shim = srsly.msgpack_loads(shim_bytes)
                except (ValueError, TypeError):
                    continue
                try:
                    check_saved_tokenizer(shim)
                except ValueError as e:
                    raise ValueError(f"{saved}: {e}") from None


def pipeline_directory(model: str) -> Optional[Path]:
    """The directory `spacy.load(model)` reads, resolved; None where it loads an installed
    package (spaCy tries a package of that name before a directory)."""
    from spacy.util import is_package

    path = Path(model)
    return None if is_package(model) or not path.is_dir() else path.resolve()
