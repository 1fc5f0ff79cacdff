"""The losses of a `bio_ner` head, with class weighting, as registered thinc Losses.

Both losses take the head's `TagScores` and the gold tag ids of each
document (-1 where the annotation is missing: the softmax loss has no term
there; the CRF leaves such a token free, summing over its tags, so a
partially annotated document still gives it gradients) and return ``(d_scores, loss)`` in thinc's order, computed in
one pass on the scores' device; only the scalar loss reaches the host
(and the CRF's flags of documents needing log-space sums: `forward_backward`).

- `spacy_bioner.ClassWeightedCrossentropy.v1`: a softmax over each token's
  tags, decoded with constrained Viterbi.
- `spacy_bioner.CRFLoss.v1`: the partial-annotation linear-chain CRF
  likelihood (`layers/crf.py`); needs a tagger with `crf = true`.
- `spacy_bioner.CostAugmentedCRFLoss.v1`: the same CRF's softmax-margin loss,
  which weights classes through the cost of a wrong tag (a proper loss, where
  `CRFLoss` scales its emission gradient).

Biomedical corpora are mostly "O" (JNLPBA training: 383k O tokens, 951
B-RNA), so re-weighting classes is a standard remedy. Which scheme helps is an
empirical question, so every scheme is a config option:

- ``none``: every class weighs 1.
- ``inverse_frequency``: w_c = N / (C * n_c), scikit-learn's "balanced".
- ``welt``: the WELT paper's CW_c = 1 - n_c / N, normalised with a softmax.
- ``ens``: effective number of samples (Cui et al. 2019), w_c proportional to
  (1 - beta) / (1 - beta ** n_c). A class of n tokens is weighed up only where
  beta ** n is not near 0: at token counts in the thousands, beta = 0.999
  weighs every class alike (as ``none``); 1 - 1 / n_c of the rarest class is
  where it begins to differ.

Every scheme's weights are then scaled so that a training token weighs 1 on
average (as ``none``'s and ``inverse_frequency``'s do): the softmax loss and
`CRFLoss` divide by the summed weight and do not see the scale, and the
cost-augmented loss's mean cost of an error is then `cost_scale` under every
scheme, so that the schemes differ in how they weigh classes, not in margin.

Classes are the tag prefixes (O, B, I, and L, U in BILUO: ``granularity =
"bio"``) or every tag (``granularity = "tag"``). Weights are computed from
the training tag counts when the component is initialised; the component saves
the counts (its `cfg`) and fits the weights to them again when it loads, as
its loss is configured then.
"""

from typing import Dict, List, Literal, Optional, Sequence, Tuple, get_args

import numpy as np
from thinc.api import registry
from thinc.backends import get_array_ops
from thinc.loss import Loss
from thinc.types import Floats3d, Ints1d, Ints2d

from .layers.crf import TagScores, constrained_statistics, forward_backward, log_softmax, pad
from .messages import check_choice
from .tags import Constraints, first_break, scheme_of, split_tag, tag_constraints

# How a loss weights the classes of gold tags.
WeightingScheme = Literal["none", "inverse_frequency", "welt", "ens"]
Granularity = Literal["bio", "tag"]
WEIGHTING_SCHEMES = get_args(WeightingScheme)
GRANULARITIES = get_args(Granularity)


def tag_class(tag: str, granularity: str) -> str:
    """The class a tag is weighted as: its prefix ("bio") or the tag itself ("tag")."""
    return split_tag(tag)[0] if granularity == "bio" else tag


def check_weighting(scheme: str, granularity: str, beta: float = 0.999) -> None:
    """Refuse an unknown weighting scheme or granularity, naming the known ones,
    and an "ens" beta outside [0, 1)."""
    check_choice(scheme, WEIGHTING_SCHEMES, "class-weighting scheme")
    check_choice(granularity, GRANULARITIES, "granularity")
    # Cui et al.'s beta is in [0, 1): at 1 every weight is 0 / 0 (NaN), and
    # outside [0, 1] (1 - beta ** n) is no count of samples.
    if scheme == "ens" and not 0.0 <= beta < 1.0:
        raise ValueError(
            f"beta = {beta!r} for the 'ens' class weights: use 0 <= beta < 1 (0 weighs every class 1, and "
            "beta near 1 approaches inverse_frequency; a class of n tokens is weighed up once beta is "
            "about 1 - 1/n or more)"
        )


def compute_class_weights(
    tag_counts: Dict[str, int], scheme: str, granularity: str = "bio", beta: float = 0.999
) -> Dict[str, float]:
    """A weight per tag, from the number of training tokens with each tag."""
    check_weighting(scheme, granularity, beta)
    class_counts: Dict[str, int] = {}
    for tag, count in tag_counts.items():
        key = tag_class(tag, granularity)
        class_counts[key] = class_counts.get(key, 0) + count
    classes = sorted(class_counts)
    seen = np.asarray([class_counts[c] for c in classes], dtype="float64")
    # A class never seen in training would get an infinite weight; count it once (for its weight alone).
    counts = np.maximum(seen, 1.0)
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
    if seen.any():  # a training token weighs 1 on average
        weights *= seen.sum() / (weights * seen).sum()
    by_class = dict(zip(classes, weights.tolist()))
    return {tag: by_class[tag_class(tag, granularity)] for tag in tag_counts}


class ClassWeightedTaggingLoss(Loss):
    """What both losses share: the class weights and the tag inventory.

    Subclasses implement `__call__(scores, truths) -> (d_scores, loss)`.
    """

    # Whether the loss trains learned transition scores (a tagger with a CRF).
    needs_transitions = False

    def __init__(self, scheme: str = "none", granularity: str = "bio", beta: float = 0.999) -> None:
        check_weighting(scheme, granularity, beta)
        self.scheme = scheme
        self.granularity = granularity
        self.beta = beta
        self.tags: List[str] = []
        self.class_weights: Optional[np.ndarray] = None
        self._constraints: Optional[Constraints] = None
        self._tag_scheme: Optional[str] = None

    def fit(self, tags: Sequence[str], tag_counts: Dict[str, int]) -> List[float]:
        """Set the tag inventory and the weights from training tag counts (in `tags` order)."""
        counts = {tag: tag_counts.get(tag, 0) for tag in tags}
        weights = compute_class_weights(counts, self.scheme, self.granularity, self.beta)
        # 6 significant digits: readable in the component's cfg; the loss holds float32.
        rounded = [float(f"{weights[tag]:.6g}") for tag in tags]
        self.set_weights(tags, rounded)
        return rounded

    def set_weights(self, tags: Sequence[str], class_weights: Sequence[float]) -> None:
        """Restore the tag inventory and weights (from a saved component's cfg)."""
        self.tags = list(tags)
        self.class_weights = np.asarray(class_weights, dtype="f")
        self._constraints = tag_constraints(self.tags)
        self._tag_scheme = scheme_of(self.tags)

    def _check_fitted(self) -> None:
        if self.class_weights is None:
            raise ValueError("Class weights are not set: initialize the component first.")

    def token_weights(self, truths: Sequence[np.ndarray], missing: float) -> List[np.ndarray]:
        """The class weight of each token's gold tag; `missing` where it is unknown."""
        self._check_fitted()
        padded = np.concatenate([self.class_weights, np.asarray([missing], dtype="f")])
        return [padded[np.asarray(truth)] for truth in truths]

    def get_grad(self, scores: TagScores, truths: Sequence[Ints1d]) -> TagScores:
        """The gradient alone (thinc's Loss API); `__call__` gives both at once."""
        return self(scores, truths)[0]

    def get_loss(self, scores: TagScores, truths: Sequence[Ints1d]) -> float:
        """The loss alone (thinc's Loss API); `__call__` gives both at once."""
        return self(scores, truths)[1]


class ClassWeightedCrossentropy(ClassWeightedTaggingLoss):
    """Softmax cross-entropy over each token's tags, with a weight per gold class.

    The loss is divided by the summed weight of the scored tokens (PyTorch's
    convention for weighted cross-entropy), so the weights' overall scale is
    irrelevant.
    """

    def __call__(self, scores: TagScores, truths: Sequence[Ints1d]) -> Tuple[TagScores, float]:
        """The gradient w.r.t. the emissions and the loss, in one pass."""
        guesses = scores.emissions
        if not guesses:
            return TagScores([]), 0.0
        ops = get_array_ops(guesses[0])
        xp = ops.xp
        logits = ops.flatten(list(guesses))
        weights_host = np.concatenate(self.token_weights(truths, missing=0.0))
        gold = xp.asarray(np.maximum(np.concatenate([np.asarray(t) for t in truths]), 0).astype("int64"))
        weights = xp.asarray(weights_host, dtype=logits.dtype)
        normalizer = max(float(weights_host.sum(dtype="float64")), 1e-8)
        log_probs = log_softmax(logits)  # the loss of a confidently wrong token is exact, not capped
        rows = xp.arange(len(gold))
        d_logits = xp.exp(log_probs) * (weights / normalizer)[:, None]
        d_logits[rows, gold] -= weights / normalizer
        loss = -(log_probs[rows, gold] * weights).sum() / normalizer
        # On the host, as thinc's with_array keeps them: CupyOps.unflatten
        # splits by host lengths and would copy device ones back (a sync).
        lengths = np.asarray([len(g) for g in guesses], dtype="i")
        return TagScores(ops.unflatten(d_logits, lengths)), float(loss)


class CRFLoss(ClassWeightedTaggingLoss):
    """Negative log-likelihood of the gold tags under the linear-chain CRF.

    The likelihood is the partial-annotation one (tokens with missing
    annotation are left free; see layers/crf.py). A sequence likelihood does
    not split into per-token terms, so the class weight of a token's gold tag
    scales its emission gradient (where the tag is missing, the mean weight of
    the batch's known tags), divided by the summed weight, as in the softmax
    loss; the loss and the gradients of the transition, start and end scores
    are unweighted and divided by the number of tokens. Both are over the documents annotated for the head only, so
    neither the weights' overall scale nor the share of other corpora's
    documents in a batch changes the size of an update. With weights other
    than `none` (the shipped scheme) this is a heuristic: the weighted
    emission gradient is the gradient of no loss, and the loss reported is
    the unweighted NLL (`CostAugmentedCRFLoss` weighs classes by a loss).

    Gold tags must be a well-formed sequence of the scheme where they are
    known (the component makes them so); one that is not has no path, and is
    refused rather than turned into NaN.
    """

    needs_transitions = True

    def __call__(self, scores: TagScores, truths: Sequence[Ints1d]) -> Tuple[TagScores, float]:
        """The gradients w.r.t. the emissions and the CRF scores, and the loss, in one pass."""
        if not scores.has_transitions:
            raise ValueError(
                "spacy_bioner.CRFLoss.v1 needs learned transition scores: set `crf = true` in the "
                "head's model (spacy_bioner.TokenTagger.v3), or use spacy_bioner.ClassWeightedCrossentropy.v1."
            )
        self._check_fitted()
        emissions = scores.emissions
        ops = get_array_ops(scores.transitions)
        xp = ops.xp
        d_emissions = [ops.xp.zeros_like(e) for e in emissions]
        # A document with no known tag (one the head is not trained on) adds
        # nothing to the loss, the gradients or the normalizers: its
        # recursions are skipped.
        truths = [np.asarray(truth) for truth in truths]
        keep = [i for i, e in enumerate(emissions) if len(e) and (truths[i] >= 0).any()]
        self._check_gold_paths([truths[i] for i in keep], keep)
        if not keep:
            zero = TagScores(d_emissions, *(xp.zeros_like(a) for a in (scores.transitions, scores.start, scores.end)))
            return zero, 0.0
        free, lengths = pad(ops, [emissions[i] for i in keep])
        dtype = free.dtype
        transitions, start, end = scores.path_scores(self._constraints.on_device(ops, dtype))
        golds_host = np.full(free.shape[:2], -1, dtype="int64")
        weights_host = np.zeros(free.shape[:2], dtype="float64")
        token_weights = self.token_weights([truths[i] for i in keep], missing=np.nan)
        # A token whose tag is missing weighs what the batch's known tokens weigh
        # on average: a fixed weight would make the size of an update depend on
        # the weights' scale and on how much of the batch is missing.
        missing_weight = np.nanmean(np.concatenate(token_weights), dtype="float64")
        for row, i in enumerate(keep):
            golds_host[row, : lengths[row]] = truths[i]
            weights_host[row, : lengths[row]] = np.where(truths[i] >= 0, token_weights[row], missing_weight)
        partial = [row for row, i in enumerate(keep) if (truths[i] < 0).any()]
        recursion = scores.recursion
        golds = xp.asarray(golds_host)
        partition_emissions, shares = self._weigh(free, lengths, golds, golds_host, weights_host)
        log_z, marginals, pairwise = forward_backward(partition_emissions, lengths, transitions, start, end, recursion)
        gold_log_z, gold_marginals, gold_pairwise = constrained_statistics(
            free, lengths, golds, partial, transitions, start, end, recursion
        )
        n_tokens = float(lengths.sum())
        gradient = xp.asarray(shares, dtype=dtype)[:, :, None] * (marginals - gold_marginals)
        docs = xp.arange(len(keep))
        last = xp.asarray(lengths - 1)
        for row, i in enumerate(keep):
            d_emissions[i] = gradient[row, : lengths[row]]
        d_scores = TagScores(
            d_emissions,
            (pairwise - gold_pairwise) / n_tokens,
            (marginals[:, 0] - gold_marginals[:, 0]).sum(axis=0) / n_tokens,
            (marginals[docs, last] - gold_marginals[docs, last]).sum(axis=0) / n_tokens,
        )
        return d_scores, float((log_z - gold_log_z).sum()) / n_tokens

    def _weigh(
        self, free: Floats3d, lengths: Ints1d, golds: Ints2d, golds_host: np.ndarray, weights_host: np.ndarray
    ) -> Tuple[Floats3d, np.ndarray]:
        """The emissions that the partition function sums over, and each token's share of the
        emission gradient (host, padded): the emissions as they are, and the token's class
        weight over the batch's summed weight (the heuristic above)."""
        return free, weights_host / weights_host.sum()

    def _check_gold_paths(self, truths: Sequence[np.ndarray], docs: Sequence[int]) -> None:
        """Refuse gold tags that no path of the scheme agrees with (`tags.first_break`;
        on the host, where they are)."""
        for truth, doc in zip(truths, docs):
            at = first_break(truth, self._constraints, self._tag_scheme)
            if at is not None:
                window = [self.tags[t] if t >= 0 else None for t in truth[max(at - 1, 0) : at + 1]]
                raise ValueError(
                    f"Gold tags of document {doc} are not a well-formed {self._tag_scheme} sequence at "
                    f"token {at} ({window}): I-X must follow B-X or I-X"
                    + (", and B-X and I-X be followed by I-X or L-X" if self._tag_scheme == "BILUO" else "")
                    + ". The bio_ner component makes its gold tags so (overlapping spans resolved); "
                    "tags given to the loss directly must be so too."
                )


class CostAugmentedCRFLoss(CRFLoss):
    """The CRF's softmax-margin loss (Gimpel and Smith 2010), with class-weighted costs.

    The partition function sums over paths with each path's cost added to its
    score. A path's cost is the sum, over the tokens whose gold tag is known, of
    `cost_scale` times the class weight of the gold tag wherever the path's tag
    differs from it: a path that errs on a rare class must lose to the gold path
    by a wider margin. Unlike `CRFLoss`'s weighted gradient, this is the
    gradient of a loss (the one reported, at least the NLL): the tags expected
    under the cost-augmented scores minus the gold's, each token counted once.
    With scheme "none", every error costs `cost_scale` (a Hamming cost); with
    `cost_scale` 0 it is `CRFLoss` with scheme "none". Missing tags cost nothing.
    """

    def __init__(
        self, scheme: str = "none", granularity: str = "bio", beta: float = 0.999, cost_scale: float = 1.0
    ) -> None:
        super().__init__(scheme=scheme, granularity=granularity, beta=beta)
        if not cost_scale >= 0.0:
            raise ValueError(f"cost_scale = {cost_scale!r}: a path's cost must be 0 or more (use 0 to 2 or so)")
        self.cost_scale = cost_scale

    def _weigh(
        self, free: Floats3d, lengths: Ints1d, golds: Ints2d, golds_host: np.ndarray, weights_host: np.ndarray
    ) -> Tuple[Floats3d, np.ndarray]:
        """The emissions plus each tag's cost, and every token's equal share."""
        xp = get_array_ops(free).xp
        costs = xp.asarray(np.where(golds_host >= 0, weights_host * self.cost_scale, 0.0), dtype=free.dtype)
        wrong = xp.arange(free.shape[2])[None, None, :] != golds[:, :, None]
        tokens = np.arange(free.shape[1])[None, :] < np.asarray(lengths)[:, None]
        return free + costs[:, :, None] * wrong, tokens / float(np.sum(lengths))


@registry.losses("spacy_bioner.ClassWeightedCrossentropy.v1")
def configure_class_weighted_crossentropy(
    scheme: WeightingScheme = "none", granularity: Granularity = "bio", beta: float = 0.999
) -> ClassWeightedCrossentropy:
    """Softmax cross-entropy; weights are fitted when the component initialises."""
    return ClassWeightedCrossentropy(scheme=scheme, granularity=granularity, beta=beta)


@registry.losses("spacy_bioner.CRFLoss.v1")
def configure_crf_loss(
    scheme: WeightingScheme = "none", granularity: Granularity = "bio", beta: float = 0.999
) -> CRFLoss:
    """The CRF likelihood; weights are fitted when the component initialises."""
    return CRFLoss(scheme=scheme, granularity=granularity, beta=beta)


@registry.losses("spacy_bioner.CostAugmentedCRFLoss.v1")
def configure_cost_augmented_crf_loss(
    scheme: WeightingScheme = "none", granularity: Granularity = "bio", beta: float = 0.999, cost_scale: float = 1.0
) -> CostAugmentedCRFLoss:
    """The CRF's softmax-margin loss; a wrong tag costs `cost_scale` times its gold tag's class weight."""
    return CostAugmentedCRFLoss(scheme=scheme, granularity=granularity, beta=beta, cost_scale=cost_scale)
