"""Class-weighted softmax cross-entropy over IOB2 tags, as a thinc Loss.

Biomedical corpora are mostly "O" (JNLPBA training: 383k O tokens, 951 B-RNA),
so re-weighting classes is a standard remedy. Which scheme helps is an
empirical question (in the Hugging Face recipe WELT weights *lowered* F1), so
every scheme is a config option:

- ``none``: every class weighs 1.
- ``inverse_frequency``: w_c = N / (C * n_c), scikit-learn's "balanced".
- ``welt``: the WELT paper's CW_c = 1 - n_c / N, normalised with a softmax.
- ``ens``: effective number of samples (Cui et al. 2019), w_c proportional to
  (1 - beta) / (1 - beta ** n_c), scaled to sum to C.

Classes are the IOB prefixes O, B, I (``granularity = "bio"``) or every tag
(``granularity = "tag"``). Weights are computed from the training tag counts
when the component is initialised and stored in the component's config.
"""

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from thinc.api import registry
from thinc.backends import get_array_ops
from thinc.loss import Loss
from thinc.types import Floats2d, Ints1d

SCHEMES = ("none", "inverse_frequency", "welt", "ens")
GRANULARITIES = ("bio", "tag")


def tag_class(tag: str, granularity: str) -> str:
    return tag.split("-", 1)[0] if granularity == "bio" else tag


def compute_class_weights(
    tag_counts: Dict[str, int], scheme: str, granularity: str = "bio", beta: float = 0.999
) -> Dict[str, float]:
    """A weight per tag, from the number of training tokens with each tag."""
    if scheme not in SCHEMES:
        raise ValueError(f"Unknown class-weighting scheme {scheme!r}: use one of {SCHEMES}")
    if granularity not in GRANULARITIES:
        raise ValueError(f"Unknown granularity {granularity!r}: use one of {GRANULARITIES}")
    class_counts: Dict[str, int] = {}
    for tag, count in tag_counts.items():
        key = tag_class(tag, granularity)
        class_counts[key] = class_counts.get(key, 0) + count
    classes = sorted(class_counts)
    # A class never seen in training would get an infinite weight; count it once.
    counts = np.asarray([max(class_counts[c], 1) for c in classes], dtype="float64")
    total = counts.sum()
    if scheme == "none":
        weights = np.ones_like(counts)
    elif scheme == "inverse_frequency":
        weights = total / (len(counts) * counts)
    elif scheme == "welt":
        raw = 1.0 - counts / total
        weights = np.exp(raw - raw.max())
        weights /= weights.sum()
    else:
        weights = (1.0 - beta) / (1.0 - np.power(beta, counts))
        weights *= len(counts) / weights.sum()
    by_class = dict(zip(classes, weights.tolist()))
    return {tag: by_class[tag_class(tag, granularity)] for tag in tag_counts}


class ClassWeightedCrossentropy(Loss):
    """Softmax cross-entropy over logits with a weight per gold class.

    Truths are per-document arrays of gold tag ids, -1 where the annotation is
    missing: those tokens contribute neither loss nor gradient. The loss is
    divided by the summed weight of the scored tokens (PyTorch's convention
    for weighted cross-entropy), so the weights' overall scale is irrelevant.
    """

    def __init__(self, scheme: str = "none", granularity: str = "bio", beta: float = 0.999):
        if scheme not in SCHEMES:
            raise ValueError(f"Unknown class-weighting scheme {scheme!r}: use one of {SCHEMES}")
        self.scheme = scheme
        self.granularity = granularity
        self.beta = beta
        self.class_weights: Optional[np.ndarray] = None

    def fit(self, tag_counts: Dict[str, int], tags: Sequence[str]) -> List[float]:
        """Set the weights from training tag counts, in the order of `tags`."""
        counts = {tag: tag_counts.get(tag, 0) for tag in tags}
        weights = compute_class_weights(counts, self.scheme, self.granularity, self.beta)
        # 6 significant digits survive the JSON of the component's cfg exactly.
        rounded = [float(f"{weights[tag]:.6g}") for tag in tags]
        self.class_weights = np.asarray(rounded, dtype="f")
        return rounded

    def token_weights(self, truths: Sequence[np.ndarray]) -> List[np.ndarray]:
        """The weight of each token's gold tag; 1 where the gold is missing."""
        if self.class_weights is None:
            raise ValueError("Class weights are not set: initialize the component first.")
        padded = np.concatenate([self.class_weights, np.ones((1,), dtype="f")])
        return [padded[np.asarray(truth)] for truth in truths]

    def __call__(
        self, guesses: Sequence[Floats2d], truths: Sequence[Ints1d]
    ) -> Tuple[List[Floats2d], float]:
        return self.get_grad(guesses, truths), self.get_loss(guesses, truths)

    def get_grad(self, guesses: Sequence[Floats2d], truths: Sequence[Ints1d]) -> List[Floats2d]:
        return self._loss_and_grad(guesses, truths)[1]

    def get_loss(self, guesses: Sequence[Floats2d], truths: Sequence[Ints1d]) -> float:
        return self._loss_and_grad(guesses, truths)[0]

    def _loss_and_grad(
        self, guesses: Sequence[Floats2d], truths: Sequence[Ints1d]
    ) -> Tuple[float, List[Floats2d]]:
        if self.class_weights is None:
            raise ValueError("Class weights are not set: initialize the component first.")
        if not guesses:
            return 0.0, []
        ops = get_array_ops(guesses[0])
        logits = ops.flatten(list(guesses))
        gold = np.concatenate([ops.to_numpy(t) for t in truths]).astype("i")
        known = gold >= 0
        gold_or_zero = np.where(known, gold, 0)
        weights = np.where(known, self.class_weights[gold_or_zero], 0.0).astype("f")
        normalizer = max(float(weights.sum()), 1e-8)
        target = np.zeros(logits.shape, dtype="f")
        target[np.arange(len(gold)), gold_or_zero] = 1.0
        probs = ops.softmax(logits, axis=-1)
        scale = ops.asarray2f((weights / normalizer)[:, None])
        d_logits = (probs - ops.asarray2f(target)) * scale
        gold_probs = ops.to_numpy((probs * ops.asarray2f(target)).sum(axis=-1))
        loss = float(-(np.log(gold_probs + 1e-12) * weights).sum()) / normalizer
        return loss, ops.unflatten(d_logits, np.asarray([len(g) for g in guesses], dtype="i"))


@registry.losses("spacy_bioner.ClassWeightedCrossentropy.v1")
def configure_class_weighted_crossentropy(
    scheme: str = "none", granularity: str = "bio", beta: float = 0.999
) -> ClassWeightedCrossentropy:
    """Config entry point; weights are fitted when the component initialises."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"Unknown granularity {granularity!r}: use one of {GRANULARITIES}")
    return ClassWeightedCrossentropy(scheme=scheme, granularity=granularity, beta=beta)
