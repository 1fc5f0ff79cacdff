"""What defines a pretraining run, and its errors."""

import math
from dataclasses import dataclass, field, fields
from typing import Any, Dict, Optional, Sequence

# Held-out selection and masking: constant, so every run is measured alike.
HELDOUT_SEED = 1234


class PretrainError(Exception):
    """A problem with the input or the output directory; the message says what."""


class OtherRun(PretrainError):
    """`--resume` over an output of another run (other settings or text): `check_same_run`.
    `what` is the recorded run ("checkpoint", "finished run"), `differences` how it differs."""

    def __init__(self, message: str, what: str = "", differences: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.what = what
        self.differences = list(differences)


@dataclass
class PretrainSettings:
    """What defines a pretraining run; a resumed run must match it."""

    # The encoder, steps and epochs are compared as what they resolve to (`output.run_identity`):
    # the encoder loaded, however its path is spelt, and the number of steps, however it is given.
    encoder: str = field(compare=False)
    max_length: int = 128
    batch_size: int = 32
    steps: Optional[int] = field(default=None, compare=False)
    epochs: Optional[float] = field(default=None, compare=False)
    learn_rate: float = 5e-5
    warmup: float = 0.06
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    mlm_probability: float = 0.15
    whole_word_mask: bool = False
    seed: int = 0
    heldout_fraction: float = 0.01
    # Not part of the run's identity (may differ on resume). The fallback
    # matters only through the encoder it resolves to, which is compared.
    fallback: str = field(default="", compare=False)
    checkpoint_every: int = field(default=500, compare=False)
    keep_checkpoint: bool = field(default=False, compare=False)

    def identity(self) -> Dict[str, Any]:
        """The settings a resumed run must share with the run it resumes: those compared."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.compare}

    def check(self) -> None:
        """Refuse values that no run could use, before anything is loaded (or any text read)."""
        check_heldout_fraction(self.heldout_fraction)
        if self.steps is not None and self.epochs is not None:
            raise PretrainError("give --steps or --epochs, not both")
        if self.steps is not None and self.steps < 1:
            raise PretrainError(f"--steps must be positive, got {self.steps}")
        if self.epochs is not None and not 0 < self.epochs < math.inf:
            raise PretrainError(f"--epochs must be a positive number, got {self.epochs}")
        for option, value in (("--batch-size", self.batch_size), ("--max-length", self.max_length),
                              ("--checkpoint-every", self.checkpoint_every)):
            if value < 1:
                raise PretrainError(f"{option} must be positive, got {value}")
        if not 0 < self.learn_rate < math.inf:
            raise PretrainError(f"--learn-rate must be a positive number, got {self.learn_rate}")
        if not 0 <= self.warmup <= 1:
            raise PretrainError(f"--warmup is a fraction of the steps in [0, 1], got {self.warmup}")
        if not 0 < self.mlm_probability < 1:
            raise PretrainError(f"mlm_probability must be in (0, 1), got {self.mlm_probability}")
        if not 0 <= self.weight_decay < math.inf or not 0 < self.max_grad_norm < math.inf:
            raise PretrainError(
                f"weight_decay must be >= 0 and max_grad_norm > 0, got {self.weight_decay} and {self.max_grad_norm}"
            )


def check_heldout_fraction(fraction: float) -> None:
    """`fraction` must be in [0, 1): some sequences must be left to train on."""
    if not 0 <= fraction < 1:
        raise PretrainError(f"--heldout-fraction must be in [0, 1), got {fraction}")
