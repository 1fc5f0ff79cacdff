"""The `bio_ner` component: a per-token tagger (IOB2 or BILUO) with well-formed decoding.

A head scores each token's tags with its model (a `TagScores`: emissions, and
a CRF's learned transitions where the model has them), learns through one
loss object chosen in the config (softmax cross-entropy, the CRF
likelihood or its cost-augmented form; each class-weighted) and decodes through one decoder
(constrained Viterbi). Predictions go to `doc.spans[spans_key]`, with a
score per span, and into `doc.ents` without overlaps.
"""

import copy
import math
import warnings
import weakref
from collections import Counter
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

import numpy as np
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import logger
from spacy.vocab import Vocab
from spacy_transformers.layers import TransformerListener
from thinc.api import Config, Model, Optimizer, set_dropout_rate
from wasabi import table

from . import bounds
from .annotation import (
    gold_in_ents_alone,
    gold_spans,
    group_head,
    head_group,
    head_keys,
    head_placed_ents,
    is_annotated,
    is_head_group,
    longest_first,
    merge_into_ents,
    same_tokens,
    select_non_overlapping,
    span_groups_hiding_ents,
)
from .chain import blank_tokens, chain_of, off_chain, on_chain, onto_chain, path_off_chain
from .decoding import DECODE_CELLS, ConstrainedViterbi, SpanScores, check_span_scores
from .layers.crf import TagScores
from .losses import ClassWeightedTaggingLoss
from .messages import counted, first_line
from .scoring import score_bio_ner
from .tags import TagScheme, check_tag_scheme, make_tags, spans_to_tags, tag_ids_to_spans

# Training documents a head sees, none of them annotated for it, before it warns that it learns nothing:
# a sourced head is not initialised, so its corpus is checked here (a batch of another head's documents
# alone is common; this many is not).
NO_GOLD_WARNING_AFTER = 1000

# What a trained head that meets other labels should do (thinc fixes an initialised output layer).
NEW_HEAD_FOR_LABELS = (
    "To learn other labels, add a head of their own beside it (a bio_ner component with its own spans_key), "
    "or train this one anew: in the training config, `factory = \"bio_ner\"` in place of `source` (the "
    "transformer may stay sourced), with every label in its corpus."
)


DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "spacy_bioner.TokenTagger.v3"
crf = false

[model.tok2vec]
@architectures = "spacy.Tok2Vec.v2"

[model.tok2vec.embed]
@architectures = "spacy.MultiHashEmbed.v2"
width = 96
attrs = ["NORM", "PREFIX", "SUFFIX", "SHAPE"]
rows = [5000, 1000, 2500, 2500]
include_static_vectors = false

[model.tok2vec.encode]
@architectures = "spacy.MaxoutWindowEncoder.v2"
width = 96
depth = 4
window_size = 1
maxout_pieces = 3
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]


@Language.factory(
    "bio_ner",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "doc.spans"],
    default_config={
        "model": DEFAULT_MODEL,
        "loss": {
            "@losses": "spacy_bioner.ClassWeightedCrossentropy.v1",
            "scheme": "none",
            "granularity": "bio",
            "beta": 0.999,
        },
        "spans_key": "ents",
        "tag_scheme": "IOB2",
        "learn_rate_scale": 1.0,
        "balance_brackets": False,
        "letter_suffix": False,
        "join_adjacent": [],
        "span_scores": "token_mean",
        "max_decode_cells": DECODE_CELLS,
        "scorer": {"@scorers": "spacy_bioner.bio_ner_scorer.v1"},
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_bio_ner(
    nlp: Language,
    name: str,
    model: Model[List[Doc], TagScores],
    loss: ClassWeightedTaggingLoss,
    spans_key: str,
    tag_scheme: TagScheme,
    learn_rate_scale: float,
    balance_brackets: bool,
    letter_suffix: bool,
    join_adjacent: List[str],
    span_scores: SpanScores,
    max_decode_cells: int,
    scorer: Optional[Callable],
) -> "BioNER":
    """Create a `bio_ner` head.

    model: a TokenTagger: tag scores per token (and CRF transitions with crf = true).
    loss: `spacy_bioner.ClassWeightedCrossentropy.v1` for a softmax tagger,
        `spacy_bioner.CRFLoss.v1` or `spacy_bioner.CostAugmentedCRFLoss.v1` for
        a tagger with a CRF; each class-weighted.
    spans_key: the head's span group: predictions go to doc.spans[spans_key]
        with their scores, and training reads gold entities from there.
    tag_scheme: "IOB2" (O, B-, I-) or "BILUO" (also L- for an entity's last
        token and U- for an entity of one token; twice the entity tags).
    learn_rate_scale: the learning rate of the component's own weights as a
        multiple of the optimizer's (which a shared transformer uses). The
        output layer starts at zero and Adam moves a weight by about one
        learning rate per step, so at a fine-tuning rate the head needs
        thousands of steps.
    balance_brackets: a predicted entity is cut at a bracket it does not
        balance (`bounds.entity_bounds`). Off by default, so that pipelines saved
        before the setting existed predict as they did; the configs set it.
    letter_suffix: a single capital letter after a predicted entity joins it
        ("hepatitis B"; `bounds.take_letter_suffixes`). Off by default, like
        the next.
    join_adjacent: labels whose predicted entities, a space apart (bounds.apart_in_line), are
        joined into one ("hemolytic" and "anemia"; `bounds.join_adjacent`).
    span_scores: an entity's score: "segment", the probability that the
        entity is exactly this one (its tokens and label), or "token_mean",
        the mean of its tokens' tag probabilities (decoding.py). "token_mean"
        by default, so that pipelines saved before the setting existed score
        as they did; the configs set "segment".
    max_decode_cells: the most padded (token, tag, tag) cells the decoder
        holds at once (`decoding.padded_groups`: a batch decodes in groups of
        documents within it); lower it where prediction runs out of GPU memory.
    scorer: reports ents_* and spans_<spans_key>_*.

    The three bounds settings, span_scores and max_decode_cells are the pipeline's config: a saved pipeline
    takes others with `spacy.load(path, config={"components": {name: {...}}})`;
    an attribute changed at runtime holds until the pipeline is saved, which
    keeps the config. `spans_key` and `tag_scheme` are saved with the weights
    (as spancat saves its spans_key): a saved head keeps its spans_key
    whatever the config says, and a tag_scheme other than its own is refused.
    """
    return BioNER(
        nlp.vocab,
        model,
        name,
        loss=loss,
        spans_key=spans_key,
        tag_scheme=tag_scheme,
        learn_rate_scale=learn_rate_scale,
        balance_brackets=balance_brackets,
        letter_suffix=letter_suffix,
        join_adjacent=join_adjacent,
        span_scores=span_scores,
        max_decode_cells=max_decode_cells,
        scorer=scorer,
    )


# The heads alive in this process, which tell two heads writing one key from a document annotated before.
_LIVE_HEADS: "weakref.WeakSet[BioNER]" = weakref.WeakSet()


def _warn_of_score_weights_no_component_scores(nlp: Optional[Language]) -> None:
    """Warn where [training.score_weights] weighs span groups' scores (`spans_KEY_f`) that no
    component of `nlp` writes: spaCy counts a missing score as 0, so that with a head's spans_key
    changed from a config's, and its weights kept, every evaluation scores 0.00 (model-best is the
    last evaluation, and patience ends the run `patience` steps after the first); beside a score
    that is written (the factory's default ents_f), that weight's share of the score chooses nothing."""
    if nlp is None:
        return
    weights = nlp.config.get("training", {}).get("score_weights") or {}
    written = {key for _, pipe in nlp.components
               for key in (getattr(pipe, "spans_key", None), getattr(pipe, "key", None)) if isinstance(key, str)}
    weighed = [name for name, weight in weights.items() if weight]
    stale = sorted(name for name in weighed
                   if name.startswith("spans_") and name.rsplit("_", 1)[-1] in ("f", "p", "r")
                   and name[len("spans_"):].rsplit("_", 1)[0] not in written)
    if stale:
        heads = [f"spans_{key}_f" for key in sorted(head_keys(nlp, include_disabled=True))]
        effect = ("dev scores cannot choose model-best" if len(stale) == len(weighed) else
                  f"{sum(weights[name] for name in stale):g} of the weights' {sum(weights[name] for name in weighed):g} "
                  "choose nothing")
        warnings.warn(
            f"[training.score_weights] weighs {', '.join(stale)}, which no component of the pipeline scores "
            f"(spaCy counts them 0, so {effect}): weigh the heads' scores instead "
            f"({', '.join(heads) or 'spans_KEY_f'}, KEY each head's spans_key)"
        )


def _has_weights(layer: Model) -> bool:
    """Whether thinc `layer` has any of its parameters: once it has, thinc changes none of its sizes."""
    return any(layer.has_param(name) for name in layer.param_names)


class BioNER(TrainablePipe):
    """Tags tokens (IOB2 or BILUO) and writes the entities to doc.ents and doc.spans.

    `rehearse` is TrainablePipe's no-op: a head's rehearsal model would be a
    copy of its transformer listener, which the shared transformer never feeds.
    """

    def __init__(
        self,
        vocab: Vocab,
        model: Model[List[Doc], TagScores],
        name: str = "bio_ner",
        *,
        loss: ClassWeightedTaggingLoss,
        spans_key: str = "ents",
        tag_scheme: str = "IOB2",
        learn_rate_scale: float = 1.0,
        balance_brackets: bool = False,
        letter_suffix: bool = False,
        join_adjacent: Sequence[str] = (),
        span_scores: str = "token_mean",
        max_decode_cells: int = DECODE_CELLS,
        scorer: Optional[Callable] = score_bio_ner,
    ) -> None:
        self.vocab = vocab
        self.model = model
        self.name = name
        self.loss = loss
        self.scorer = scorer
        _LIVE_HEADS.add(self)
        if not 0 < learn_rate_scale < math.inf:
            raise ValueError(
                f"bio_ner component {name!r}: learn_rate_scale is a positive factor of the optimizer's "
                f"rate, not {learn_rate_scale!r}"
            )
        self.learn_rate_scale = learn_rate_scale
        self.balance_brackets = balance_brackets
        self.letter_suffix = letter_suffix
        if isinstance(join_adjacent, str):
            raise ValueError(f"bio_ner component {name!r}: join_adjacent is a list of labels, e.g. [{join_adjacent!r}]")
        self.join_adjacent = list(join_adjacent)
        self.tag_scheme = check_tag_scheme(tag_scheme)
        self.span_scores = check_span_scores(span_scores)
        if isinstance(max_decode_cells, bool) or not isinstance(max_decode_cells, int) or max_decode_cells < 1:
            raise ValueError(
                f"bio_ner component {name!r}: max_decode_cells is a positive number of cells, not {max_decode_cells!r}"
            )
        self.max_decode_cells = max_decode_cells
        if not model.has_ref("output_layer"):
            raise ValueError(
                f"bio_ner component {name!r}: its model ({model.name}) is no token tagger with an output layer: "
                f'set @architectures = "spacy_bioner.TokenTagger.v3" in [components.{name}.model]'
            )
        if loss.needs_transitions != model.has_ref("crf"):
            raise ValueError(
                f"bio_ner component {name!r}: the loss {type(loss).__name__} "
                + ("needs a model with a CRF: set `crf = true` in its model." if loss.needs_transitions
                   else "trains no CRF transitions: use spacy_bioner.CRFLoss.v1, or set `crf = false`.")
            )
        # The tag scheme is saved with the weights, to refuse loading them under another. The
        # training tag counts (in `tags` order) are saved for the loss to weigh them as configured
        # at loading, which may differ from the loss that was trained (resume_training, sourcing).
        self.cfg: Dict[str, Any] = {
            "labels": [],
            "spans_key": spans_key,
            "class_weights": None,
            "tag_counts": None,
            "tag_scheme": self.tag_scheme,
        }
        # Labels of gold entities outside the head's label set, warned once each.
        self._unknown_labels: Set[str] = set()
        self._warned_labels: Set[str] = set()
        # Whether some came from the doc.ents of a document without span groups.
        self._unknown_in_ents_alone = False
        # Heads of other names found to have written this head's span group, warned once each.
        self._warned_shared_key: Set[str] = set()
        self._warned_foreign_group = False
        self._warned_no_transformer = False
        # Training documents seen while none was annotated for the head, by the span groups that hide
        # their doc.ents (() where none does); None once one was annotated, or the head warned.
        self._unannotated_seen: Optional[Counter] = Counter()
        # Overlapping gold entities dropped, by (dropped label, kept label), warned once per pair.
        self._overlaps: Counter = Counter()
        self._warned_overlaps: set = set()
        # Gold entities no pipeline tokens hold (an edge inside one), by label, warned once.
        self._unprojected: Counter = Counter()
        self._first_unprojected = ""
        self._warned_unprojected = False
        # Built from the labels when first needed (they are known only after initialize or loading).
        self._decoder: Optional[ConstrainedViterbi] = None

    @property
    def labels(self) -> Tuple[str, ...]:
        """The head's entity labels, sorted."""
        return tuple(self.cfg["labels"])

    @property
    def tags(self) -> List[str]:
        """The head's tags: O, then each prefix of its scheme per label."""
        return make_tags(self.labels, self.tag_scheme)

    @property
    def spans_key(self) -> str:
        """The doc.spans key the head reads gold entities from and writes predictions to.

        Saved with the weights, as spancat saves its key: a loaded or sourced
        head keeps its own whatever its config says (the config the pipeline
        saves too); set this to move it.
        """
        return self.cfg["spans_key"]

    @spans_key.setter
    def spans_key(self, key: str) -> None:
        self.cfg["spans_key"] = key

    @property
    def label_data(self) -> List[str]:
        """The labels, for `spacy init labels`."""
        return list(self.labels)

    @property
    def decoder(self) -> ConstrainedViterbi:
        """The constrained Viterbi decoder over this head's tags."""
        decoder = self._decoder
        settings = (self.tags, self.span_scores, self.max_decode_cells)
        if decoder is None or (decoder.tags, decoder.span_scores, decoder.max_cells) != settings:
            self._decoder = ConstrainedViterbi(*settings)
        return self._decoder

    def add_label(self, label: str) -> int:
        """Add an entity label before initialisation; 1 if it is new, else 0.

        `initialize` keeps the labels added (with those of the data, unless
        it is given its labels).
        """
        if label in self.labels:
            return 0
        self._check_labels([label], "add_label")
        self._allow_extra_label()
        self.cfg["labels"] = sorted([*self.labels, label])
        self.vocab.strings.add(label)
        return 1

    def _check_labels(self, labels: Iterable[str], source: str) -> None:
        """Refuse an empty label: its tags ("B-") would name no entity type."""
        if "" in labels:
            raise ValueError(
                f"bio_ner component {self.name!r}: an empty entity label, from {source}. Give every gold "
                "entity a label (Span(doc, start, end, label=...)), or leave unlabelled spans out of the corpus."
            )

    def _model_n_tags(self) -> Optional[int]:
        """The number of tags the model's output is shaped for; None before initialisation."""
        for ref in ("output_layer", "crf"):
            if self.model.has_ref(ref) and self.model.get_ref(ref).has_dim("nO"):
                return self.model.get_ref(ref).get_dim("nO")
        return None

    def _allow_extra_label(self) -> None:
        # As spaCy's TrainablePipe: the output layer's nO, once set, is fixed (thinc).
        if self._model_n_tags() is not None:
            raise ValueError(
                f"Cannot add labels to the initialised bio_ner component {self.name!r}: a trained head "
                f"keeps its labels, as spaCy's tagger does. {NEW_HEAD_FOR_LABELS}"
            )

    # Inference ---------------------------------------------------------------

    def predict(self, docs: Iterable[Doc]) -> List[Tuple[np.ndarray, np.ndarray]]:
        """Per doc: the decoded tag id of each token and its confidence: the tag's
        probability, or with span_scores = "segment" that of the token's entity (decoding.py).
        Blank tokens (whitespace, invisible characters) are off the decoded chain (chain.py):
        inside an entity they are inside it, elsewhere O."""
        docs = list(docs)
        if not any(len(doc) for doc in docs):
            return [(np.zeros((len(d),), dtype="i"), np.ones((len(d),), dtype="f")) for d in docs]
        self._warn_if_transformer_did_not_run(docs)
        chains = [chain_of(doc) for doc in docs]
        paths, confidences = self.decoder(self.model.ops, on_chain(self.model.predict(docs), chains))
        # Checked on the host, where the confidences are anyway: a NaN or infinite score
        # makes every confidence of its document NaN, and its paths meaningless.
        broken = sum(1 for confidence in confidences if not np.isfinite(confidence).all())
        if broken:
            raise ValueError(
                f"bio_ner component {self.name!r}: its scores are not finite (NaN or infinite) in "
                f"{broken} of {len(docs)} documents: the weights have diverged (a learning rate too "
                "high?) or are damaged; train again, or load an earlier pipeline"
            )
        return [path_off_chain(path, confidence, chain, len(doc), self.tags)
                for path, confidence, chain, doc in zip(paths, confidences, chains, docs)]

    def _warn_if_transformer_did_not_run(self, docs: List[Doc]) -> None:
        """Warn once where a head that listens to the transformer component
        runs without it: the listener then gives zeros for `doc._.trf_data`,
        and the head entities of no meaning."""
        if self._warned_no_transformer:
            return
        if Doc.has_extension("trf_data") and all(doc._.trf_data is not None for doc in docs if len(doc)):
            return
        if any(isinstance(node, TransformerListener) for node in self.model.walk()):
            self._warned_no_transformer = True
            warnings.warn(
                f"The bio_ner head {self.name!r} listens to the transformer component, which has not run on "
                "these documents (disabled, or not in this pipeline): its entities are meaningless. Enable "
                "the transformer, or add the head with its own copy (nlp.replace_listeners). In training, "
                "a head in [training] annotating_components needs \"transformer\" there too."
            )

    def set_annotations(self, docs: Iterable[Doc], predictions: List[Tuple[np.ndarray, np.ndarray]]) -> None:
        """Write each doc's entities to doc.spans[spans_key] (with a score
        per span) and merge them into doc.ents.

        An entity that crosses a blank line is cut there (`paragraph_pieces`).
        Each keeps the tokens `entity_bounds` gives it (no whitespace or lone
        symbols at either end; with `balance_brackets`, no unbalanced bracket);
        an entity left with none is dropped. Then, with `join_adjacent`, entities of
        those labels a space apart become one, and with `letter_suffix`, an
        entity takes a capital letter after it (bounds.py). A span's score is
        the mean confidence of its tokens decoded as an entity (a letter it
        took was decoded outside one): with span_scores = "segment", where
        every token of a decoded entity has that entity's probability, the
        probability of the entity it was cut from, and for entities joined,
        the mean over their tokens.
        """
        tags = self.tags
        for doc, (path, confidence) in zip(docs, predictions):
            entities = []
            decoded = np.zeros(len(doc), dtype=bool)
            for decoded_start, decoded_end, label in tag_ids_to_spans(path, tags):
                for piece in bounds.paragraph_pieces(doc, decoded_start, decoded_end):
                    start, end = bounds.entity_bounds(doc, *piece, balance_brackets=self.balance_brackets)
                    if start < end:
                        entities.append((start, end, label))
                        decoded[start:end] = True
            if self.join_adjacent:
                entities = bounds.join_adjacent(doc, entities, self.join_adjacent)
            if self.letter_suffix:
                entities = bounds.take_letter_suffixes(doc, entities)
            spans = [Span(doc, start, end, label=label) for start, end, label in entities]
            decoded &= ~blank_tokens(doc)  # off the chain: no confidence of their own
            scores = [float(confidence[start:end][decoded[start:end]].mean()) for start, end, _ in entities]
            if self.spans_key in doc.spans:
                self._warn_shared_key(doc.spans[self.spans_key])
            group = head_group(doc, self.spans_key, spans, scores, head=self.name)
            earlier = head_placed_ents(doc, self.spans_key)  # a doc this head annotated before
            doc.spans[self.spans_key] = group
            merge_into_ents(doc, list(group), scores, replacing=earlier)

    # Training ----------------------------------------------------------------

    def gold_tags(self, example: Example) -> np.ndarray:
        """Gold tag id per token of the predicted doc's chain (its tokens but the blank ones,
        `chain.chain_of`); -1 where unknown or unannotated.

        Gold spans are projected onto the predicted tokens through the
        example's alignment, so the head also learns when the pipeline's
        tokenizer splits a reference token (GENIA's "IL-2" into "IL - 2"):
        every piece of an entity is inside it. Overlapping entities are made
        non-overlapping as spaCy's `filter_spans` does (the longest, then the
        earliest, is kept; the others are noted and warned about once).
        Unannotated (-1), as in spaCy's `Example.get_aligned_ner`: the tokens
        of entities whose label is not among the head's labels (noted and
        warned about once), with any entity of a known label nested in one
        (the scorer and seqeval keep the longer of two overlapping entities
        whatever their labels, so such a nested entity is in no gold the head
        is scored on), those of dropped overlapping entities outside the
        kept ones, of entities that cannot be projected onto the
        predicted tokens, and, when the gold comes from doc.ents, of
        reference tokens whose NER annotation is missing.
        """
        reference = example.reference
        chain = chain_of(example.predicted)
        gold = np.full((len(example.predicted) if chain is None else len(chain),), -1, dtype="i")
        spans = gold_spans(reference, self.spans_key)
        if spans is None:
            return gold
        known = [span for span in spans if span.label_ in self.labels]
        unknown = [span for span in spans if span.label_ not in self.labels]
        self._unknown_labels.update(span.label_ for span in unknown)
        self._unknown_in_ents_alone |= bool(unknown) and gold_in_ents_alone(reference)
        known, dropped = select_non_overlapping(known, priority=longest_first)
        self._overlaps.update((span.label_, kept.label_) for span, kept in dropped)
        # Reference tokens without gold for this head.
        missing = np.zeros((len(reference),), dtype=bool)
        for span in unknown:
            missing[span.start : span.end] = True
        if dropped:  # a dropped entity's tokens are in an entity: not O, where no kept one has them
            in_kept = np.zeros((len(reference),), dtype=bool)
            for span in known:
                in_kept[span.start : span.end] = True
            for span, _ in dropped:
                missing[span.start : span.end] |= ~in_kept[span.start : span.end]
        if self.spans_key not in reference.spans:  # the gold is doc.ents
            missing |= reference.to_array("ENT_IOB") == 0
        if same_tokens(example):
            missing_x = missing
        else:
            projected = []
            for span in known:
                aligned = example.get_aligned_spans_y2x([span], allow_overlap=True)
                projected.extend(aligned)
                if not aligned:
                    missing[span.start : span.end] = True
                    self._unprojected[span.label_] += 1
                    if not self._first_unprojected:
                        context = reference.text[max(span.start_char - 20, 0) : span.end_char + 20]
                        self._first_unprojected = f"{span.text!r} in {context!r}"
            known = projected
            y2x = example.alignment.y2x
            missing_x = np.zeros((len(example.predicted),), dtype=bool)
            missing_x[y2x.data[np.repeat(missing, y2x.lengths)]] = True
        spans = [(span.start, span.end, span.label_) for span in known]
        if chain is not None:
            spans, missing_x = onto_chain(spans, chain), missing_x[chain]
        tag_ids = {tag: i for i, tag in enumerate(self.tags)}
        gold[:] = [tag_ids[tag] for tag in spans_to_tags(len(gold), spans, self.tag_scheme)]
        gold[missing_x] = -1
        return gold

    def get_loss(self, examples: Iterable[Example], scores: TagScores) -> Tuple[float, TagScores]:
        """The head's loss on `examples` and its gradient w.r.t. `scores`, on the
        documents' chains (chain.py: 0 at blank tokens)."""
        examples = list(examples)
        validate_examples(examples, "BioNER.get_loss")
        chains = [chain_of(eg.predicted) for eg in examples]
        d_chains, loss = self.loss(on_chain(scores, chains), [self.gold_tags(eg) for eg in examples])
        return loss, off_chain(d_chains, chains, scores)

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Learn from a batch: forward, loss, backprop, and an optimizer step if `sgd`."""
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "BioNER.update")
        if not any(len(eg.predicted) for eg in examples):
            return losses
        set_dropout_rate(self.model, drop)
        scores, backprop = self.model.begin_update([eg.predicted for eg in examples])
        loss, d_scores = self.get_loss(examples, scores)
        backprop(d_scores)
        if sgd not in (None, False):
            self.finish_update(sgd)
        losses[self.name] += loss
        self._count_unannotated(examples)
        self._warn_unknown_labels()
        self._warn_overlaps()
        self._warn_unprojected()
        return losses

    def finish_update(self, sgd: Optimizer) -> None:
        """Update the head's weights at `learn_rate_scale` times the optimizer's rate
        (thinc's `Model.finish_update` with the optimizer's `lr_scale`).

        A shared transformer's weights are not among them: its component
        updates them, at the optimizer's own rate, as does any PyTorch shim here.
        """
        for node in self.model.walk():
            for shim in node.shims:
                shim.finish_update(sgd)
        for node in self.model.walk():
            for name in node.param_names:
                if node.has_grad(name):
                    param, _ = sgd(
                        (node.id, name), node.get_param(name), node.get_grad(name), lr_scale=self.learn_rate_scale
                    )
                    node.set_param(name, param)  # the optimizer zeroes the gradient in place

    def _count_unannotated(self, examples: Sequence[Example]) -> None:
        """Warn once where the first NO_GOLD_WARNING_AFTER training documents hold no gold for the head."""
        if self._unannotated_seen is None:
            return
        if any(is_annotated(eg.reference, self.spans_key) for eg in examples):
            self._unannotated_seen = None
            return
        self._unannotated_seen.update(tuple(span_groups_hiding_ents(eg.reference, self.spans_key)) for eg in examples)
        seen = sum(self._unannotated_seen.values())
        if seen >= NO_GOLD_WARNING_AFTER:
            hidden = Counter({groups: n for groups, n in self._unannotated_seen.items() if groups})
            self._unannotated_seen = None
            warnings.warn(
                f"{self.name}: none of the first {seen} training documents is annotated for this head "
                f"(doc.spans[{self.spans_key!r}], or doc.ents in a document without span groups): it learns "
                "nothing from them (unless its corpus comes after them in an unshuffled stream, max_epochs = -1). "
                + (self._hidden_ents_note(hidden) if hidden else
                                         "Convert the corpus with --spans-key naming the head's key.")
            )

    def _warn_unknown_labels(self) -> None:
        new = self._unknown_labels - self._warned_labels
        in_ents_alone = self._unknown_in_ents_alone
        self._unknown_labels.clear()
        self._unknown_in_ents_alone = False
        if new:
            self._warned_labels.update(new)
            hint = (
                " They are in the doc.ents of documents without span groups, which every head takes "
                "for its own gold, each other token an O: as meant where the corpus holds several heads' "
                "entities (convert --ents-only); where these are sentences of another head's "
                "corpus, spaCy's spacy.Corpus.v1 has dropped their doc.spans in cutting documents "
                "into sentences (gold_preproc = true, or documents of max_length tokens or more). "
                "Set gold_preproc = false and max_length = 0, or read the corpora with "
                "spacy_bioner.MultiCorpus.v1."
                if in_ents_alone else ""
            )
            warnings.warn(
                f"{self.name}: gold entities labelled {sorted(new)} are not among this head's "
                f"labels {list(self.labels)}; their tokens are treated as unannotated. "
                "Add the labels to the corpus the head is initialised on, or "
                f"check the span key {self.spans_key!r}. A trained head, loaded or sourced, keeps its "
                f"labels: {NEW_HEAD_FOR_LABELS}{hint}"
            )

    def _warn_shared_key(self, group: SpanGroup) -> None:
        """Warn that something else wrote the span group this head is about to replace: once per
        other head, a head of another name alive with this head's key (a group written before by a
        head since renamed, or no longer loaded, is a document annotated again, as by this head);
        once, spans that no head wrote (a span_ruler given this key, gold read with the document, a head's
        group without its mark)."""
        if not is_head_group(group):
            if len(group) and not self._warned_foreign_group:
                self._warned_foreign_group = True
                warnings.warn(
                    f"{self.name}: doc.spans[{self.spans_key!r}] held spans no bio_ner head wrote (a span_ruler's "
                    "given this key, gold read with the document, or a head's group that Doc.from_docs or "
                    f"Doc.from_json left without its mark): {self.name!r} replaces them with its own (their "
                    "entities in doc.ents stay, as set by something else). Give another component another spans_key."
                )
            return
        other = group_head(group)
        if other is None or other == self.name or other in self._warned_shared_key:
            return
        if not any(head is not self and head.name == other and head.spans_key == self.spans_key
                   for head in list(_LIVE_HEADS)):
            return
        self._warned_shared_key.add(other)
        warnings.warn(
            f"bio_ner components {other!r} and {self.name!r} both write doc.spans[{self.spans_key!r}]: "
            f"{self.name!r} replaces {other!r}'s entities, there and in doc.ents. Where both are heads of "
            "one pipeline (a loaded or sourced head keeps the key it was trained with), give one another "
            f"key, e.g. nlp.get_pipe({self.name!r}).spans_key = {self.name!r}"
        )

    def _warn_unprojected(self) -> None:
        if self._unprojected and not self._warned_unprojected:
            self._warned_unprojected = True
            counts = ", ".join(f"{label} {n:,}" for label, n in sorted(self._unprojected.items()))
            warnings.warn(
                f"{self.name}: {counted(sum(self._unprojected.values()), 'gold entity', 'gold entities')} "
                f"({counts}) start or end inside a token of the pipeline's tokenizer (the first: "
                f"{self._first_unprojected}): no tokens of the pipeline hold them, so theirs are left "
                "unannotated, not learned. Tokenize as the gold does (the BioTokenizer, for the corpora it "
                "was made for), or train on the gold's tokens (spacy_bioner.MultiCorpus.v1, gold_tokens = true)."
            )
        self._unprojected.clear()
        self._first_unprojected = ""

    def _warn_overlaps(self) -> None:
        new = set(self._overlaps) - self._warned_overlaps
        if new:
            self._warned_overlaps.update(new)
            counts = ", ".join(
                f"{n} {dropped} overlapping a {kept}" for (dropped, kept), n in sorted(self._overlaps.items())
            )
            warnings.warn(
                f"{self.name}: some gold entities overlap; kept the longest (then the earliest) of "
                f"overlapping entities, as spaCy's filter_spans does, and dropped {counts} (their tokens "
                "outside the kept entities are left unannotated, not O)."
            )
        self._overlaps.clear()

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Sequence[str]] = None,
    ) -> None:
        """Collect labels and tag counts, fit the class weights, shape the model.

        labels: the head's entity labels; by default those added with
            `add_label` and every label of the gold entities in documents
            annotated for this head.

        An initialised head keeps its number of tags (thinc does not resize
        an initialised layer): it may be initialised again for as many tags
        (its weights are then initialised anew), and refuses a label set with
        another number of tags before changing anything.
        """
        validate_get_examples(get_examples, "BioNER.initialize")
        self._check_own_spans_key(nlp)
        _warn_of_score_weights_no_component_scores(nlp)
        # Span groups of the pipeline's other heads annotate documents for them; disabled
        # heads count (spacy train initialises with its frozen and sourced components disabled).
        other_keys = set(head_keys(nlp, include_disabled=True)) - {self.spans_key} if nlp is not None else set()
        # Two passes over the examples, as spaCy's own pipes make, instead of keeping them all:
        # the labels first, then the tag counts (a tag needs the label set).
        gold_labels = set()
        hidden = Counter()  # documents whose doc.ents are unused, by their span groups
        seen = annotated = 0
        for eg in get_examples():
            seen += 1
            spans = gold_spans(eg.reference, self.spans_key)
            if spans is not None:
                annotated += 1
                gold_labels.update(span.label_ for span in spans)
            elif (groups := span_groups_hiding_ents(eg.reference, self.spans_key)) and not other_keys & set(groups):
                hidden[tuple(groups)] += 1
        if labels is None:
            labels = {*self.labels, *gold_labels}
        labels = sorted(set(labels))  # one tag per label, however often it is given
        self._check_labels(labels, "the gold entities or the labels given")
        if not labels:
            raise ValueError(f"No entity labels for bio_ner component {self.name!r}: "
                             + self._why_no_labels(seen, annotated, hidden))
        n_tags = self._model_n_tags()
        new_tags = make_tags(labels, self.tag_scheme)
        size_differs = n_tags is not None and n_tags != len(new_tags)
        if size_differs and not self._was_initialized() and _has_weights(self.model.get_ref("output_layer")):
            raise ValueError(
                f"bio_ner component {self.name!r}: an initialisation that failed shaped its output for {n_tags} "
                f"tags, which thinc cannot resize: initialise it again with the same labels, or for labels "
                f"{labels} start from the pipeline as it was before (load it again, or build it anew)"
            )
        if size_differs and not self._was_initialized():
            raise ValueError(
                f"bio_ner component {self.name!r}: its model config sets nO = {n_tags}, but the head shapes its "
                f"output for its tags ({len(new_tags)} for labels {labels} in {self.tag_scheme}): remove nO "
                f"from [components.{self.name}.model]"
            )
        if size_differs:
            raise ValueError(
                f"bio_ner component {self.name!r} has a model shaped for {n_tags} tags (labels "
                f"{list(self.labels)}) and cannot be initialised again for {len(new_tags)} "
                f"(labels {labels}): thinc does not resize an initialised output layer. Initialise it "
                "with the same labels, or replace it with a new bio_ner component for the new labels."
            )
        self._check_join_adjacent(labels, "at initialize")
        if hidden:
            warnings.warn(f"{self.name}: {self._hidden_ents_note(hidden)}")
        # An initialisation that fails (in the encoder, out of memory, Ctrl-C) leaves the head as it was,
        # so that it can be initialised again: a head left with the new labels and an output size but no
        # weights would refuse a retry as trained. A layer that got its weights keeps its size (thinc
        # resizes none with weights), the new labels' (a retry with them initialises it anew).
        cfg = copy.deepcopy(self.cfg)
        layers = [self.model.get_ref(ref) for ref in ("output_layer", "crf") if self.model.has_ref(ref)]
        sizes = [(layer, layer.maybe_get_dim("nO")) for layer in layers]
        try:
            self._initialize_for(labels, get_examples)
        except BaseException:
            self.cfg.clear()
            self.cfg.update(cfg)
            for layer, size in sizes:
                if not _has_weights(layer):
                    layer.set_dim("nO", size, force=True)
            raise

    def _initialize_for(self, labels: List[str], get_examples: Callable[[], Iterable[Example]]) -> None:
        """`initialize` with its labels checked: the tags, their counts, the class weights, the model."""
        self.cfg["labels"] = labels
        for label in self.labels:
            self.vocab.strings.add(label)
        tags = self.tags
        tag_counts: Counter = Counter()
        # The model's initialisation sample: annotated documents first, none empty (a transformer's
        # listener cannot be initialised on documents without tokens alone).
        annotated_sample: List[Doc] = []
        for eg in get_examples():
            if is_annotated(eg.reference, self.spans_key):
                tag_counts.update(tags[t] for t in self.gold_tags(eg) if t >= 0)
                if len(annotated_sample) < 10 and len(eg.predicted):
                    annotated_sample.append(eg.predicted)
        self._unknown_labels.clear()
        self._warn_overlaps()
        self._warn_unprojected()
        self.cfg["tag_counts"] = [tag_counts.get(tag, 0) for tag in tags]
        self.cfg["class_weights"] = self.loss.fit(self.tags, tag_counts)
        self._log_class_weights(tag_counts)
        for ref in ("output_layer", "crf"):
            if self.model.has_ref(ref):
                self.model.get_ref(ref).set_dim("nO", len(self.tags))
        sample = annotated_sample or list(islice((eg.predicted for eg in get_examples() if len(eg.predicted)), 10))
        self.model.initialize(X=sample)

    def _why_no_labels(self, seen: int, annotated: int, hidden: Counter) -> str:
        """Why `initialize` found no label, from what the training examples held, and what to do."""
        if hidden:
            return self._hidden_ents_note(hidden)
        give = f"give the labels in [initialize.components.{self.name}] labels"
        if annotated:
            return (f"{counted(annotated, 'training document')} annotated for it (doc.spans[{self.spans_key!r}] "
                    f"or doc.ents), but without an entity: check the corpus, or {give}.")
        labels_help = f"{give} (spacy init labels writes them)"
        if not seen:
            return ("the training corpus gave no document: check [paths.train] and [corpora.train] (spaCy's "
                    "corpus reader leaves out sentences of max_length tokens or more, and stops at limit); "
                    f"without training documents (spacy assemble), {labels_help}.")
        # nlp.initialize() without examples gives spaCy's placeholder document ("x y z"), unannotated.
        return (f"no training document has doc.spans[{self.spans_key!r}] or doc.ents. Without training "
                f"documents (nlp.initialize(), spacy assemble), {labels_help}; with a corpus, convert it with "
                "`python -m spacy_bioner convert`, or set the component's spans_key.")

    def _check_own_spans_key(self, nlp: Optional[Language]) -> None:
        """Refuse another head of `nlp` that writes this head's spans_key: each would replace the other's
        group, and its entities in doc.ents."""
        if nlp is None:
            return
        for name, pipe in nlp.components:
            if pipe is not self and isinstance(pipe, BioNER) and pipe.spans_key == self.spans_key:
                raise ValueError(
                    f"bio_ner components {name!r} and {self.name!r} both write doc.spans[{self.spans_key!r}]: "
                    f"give each head its own spans_key (e.g. spans_key = \"{self.name}\" in [components.{self.name}])"
                )

    def _hidden_ents_note(self, hidden: Counter) -> str:
        """What to do about documents whose doc.ents are unused (counted by their span groups)."""
        groups = sorted({group for key in hidden for group in key})
        return (
            f"{sum(hidden.values())} training documents have entities in doc.ents but are not annotated "
            f"for this head: they carry other span groups ({groups}) and no doc.spans[{self.spans_key!r}]. "
            f"Store their gold entities under doc.spans[{self.spans_key!r}] too, or set the component's "
            "spans_key to the span group that holds them."
        )

    def _log_class_weights(self, tag_counts: Counter) -> None:
        """The class weights, at INFO on spaCy's logger (`spacy train --verbose` shows them)."""
        rows = [(tag, tag_counts.get(tag, 0), f"{w:.4f}") for tag, w in zip(self.tags, self.cfg["class_weights"])]
        logger.info(
            "%s: class weights (%s, %s) for %d labels\n%s",
            self.name, self.loss.scheme, self.loss.granularity, len(self.labels),
            table(rows, header=("tag", "train tokens", "weight"), divider=True),
        )

    # Serialization -------------------------------------------------------------

    def _restore_loss_weights(self) -> None:
        """The loss's weights, fitted to the saved tag counts as the loss is configured now; a head
        saved without its counts (by an earlier version) restores the weights it was trained with."""
        if self.cfg.get("tag_counts") is not None:
            self.cfg["class_weights"] = self.loss.fit(self.tags, dict(zip(self.tags, self.cfg["tag_counts"])))
        elif self.cfg.get("class_weights") is not None:
            self.loss.set_weights(self.tags, self.cfg["class_weights"])

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "BioNER":
        """Load the component; a one-line error if its files are damaged or another model's
        (its config is then kept; its weights may be part replaced: load it again)."""
        return self._load(lambda: super(BioNER, self).from_disk(path, exclude=exclude), f"from {path}")

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "BioNER":
        """Load the component from bytes; a one-line error if they are damaged or another
        model's (as `from_disk`)."""
        return self._load(lambda: super(BioNER, self).from_bytes(bytes_data, exclude=exclude), "from bytes")

    def _load(self, load: Callable[[], Any], source: str) -> "BioNER":
        """Run TrainablePipe's `load`, then check what it loaded against this head's config."""
        cfg = copy.deepcopy(self.cfg)
        try:
            load()
        except (ValueError, OSError, KeyError) as err:
            self.cfg = cfg
            raise self._load_error(source, err) from err
        try:
            self._check_loaded(source)
        except ValueError:
            self.cfg = cfg
            raise
        self._restore_loss_weights()
        return self

    def _check_loaded(self, source: str) -> None:
        """Refuse weights that load without an error but do not fit this
        head's config: thinc matches saved layers to the model's by position."""
        saved_scheme = self.cfg.get("tag_scheme", self.tag_scheme)
        if saved_scheme != self.tag_scheme:
            raise ValueError(
                f"Cannot load the bio_ner component {self.name!r} {source}: its config has tag_scheme "
                f"{self.tag_scheme!r} but it was trained with {saved_scheme!r}. Set tag_scheme = "
                f"\"{saved_scheme}\" in its config, or drop the override that changed it."
            )
        if not self._was_initialized():
            return  # saved before initialize, as spaCy's pipes may be: nothing trained to check
        if self.model.has_ref("crf") and not self.model.get_ref("crf").has_param("transitions"):
            raise self._other_model_error(source, "no CRF transitions saved")
        n_tags = self._model_n_tags()
        if n_tags is not None and n_tags != len(self.tags):
            raise self._other_model_error(source, f"{n_tags} tags saved, {len(self.tags)} configured")
        self._check_join_adjacent(self.labels, source)

    def _was_initialized(self) -> bool:
        """Whether `initialize` has run (its training counts, or, saved by an earlier version, its class weights)."""
        return self.cfg.get("tag_counts") is not None or self.cfg.get("class_weights") is not None

    def _check_join_adjacent(self, labels: Sequence[str], source: str) -> None:
        """Refuse a join_adjacent label the head does not have (a typo would join nothing)."""
        unknown = sorted(set(self.join_adjacent) - set(labels))
        if unknown:
            raise ValueError(
                f"bio_ner component {self.name!r} {source}: join_adjacent names {unknown}, which are not "
                f"among its labels {list(labels)}. Name some of its labels, or drop the override."
            )

    def _other_model_error(self, source: str, detail: str) -> ValueError:
        return ValueError(
            f"Cannot load the bio_ner component {self.name!r} {source}: it was saved with another "
            f"model ({detail}), e.g. another head's, a CRF head loaded into a softmax one, or one with features "
            "loaded into one without. Give the component "
            "the model config it was trained with (its config.cfg), or drop the override that changed it."
        )

    def _load_error(self, source: str, err: Exception) -> ValueError:
        """One line instead of a traceback from deep inside srsly or thinc."""
        detail = first_line(err)
        # thinc: the saved layers are not this model's (another number of them, e.g. features
        # added or dropped), or their sizes are not (another label set).
        if (isinstance(err, KeyError) or detail.startswith("Attempt to change dimension")
                or "mismatched structure" in detail):
            return self._other_model_error(source, detail)
        excluded = (
            f" A pipeline saved without it (nlp.to_disk(..., exclude=[{self.name!r}])) loads with "
            f"spacy.load(path, exclude=[{self.name!r}]) and, if it has one, the component that reads it."
            if isinstance(err, FileNotFoundError)
            else ""
        )
        return ValueError(
            f"Cannot load the bio_ner component {self.name!r} {source}: its files are missing, "
            f"truncated or corrupted ({type(err).__name__}: {detail}).{excluded} "
            "Otherwise, re-download or retrain the pipeline."
        )
