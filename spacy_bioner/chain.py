"""The tag chain: the tokens a head tags, its blank tokens (whitespace, invisible characters) left out.

spaCy makes whitespace a token of its own wherever it is more than the one
plain space after a token: a leading space, a line end in wrapped text, a
double space, U+00A0 or U+2009 between a number and its unit (PubMed's
abstracts hold them); the BioTokenizer splits off invisible characters (a
zero-width space, a BOM, a soft hyphen) too. A WordPiece encoder (the
configs') gives such a token no wordpieces, so a head has no features
there, and in a linear chain of tags it would stand between two words that
are neighbours in the text: a leading line end would take the start score
from the first word, a line end between two sentences the transition from
"." to the next word. The training corpora hold next to none, so what a
head would do there is untrained.

A head therefore tags only the other tokens, as a Hugging Face tagger, whose
words are split at whitespace, does: the rows of its scores for those
tokens are the chain it is trained and decoded on (`on_chain`), its gold is
projected onto that chain (`onto_chain`), its gradient is zero at
whitespace (`off_chain`), and a decoded path is laid back over the
document's tokens (`path_off_chain`): whitespace inside a decoded entity is
inside it, any other is O. spaCy's transition-based `ner` keeps its
entities off whitespace too, by refusing to begin or end one there.
"""

import dataclasses
from functools import lru_cache
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from spacy.tokens import Doc
from thinc.api import get_array_module
from thinc.types import Floats1d, Ints1d

from .layers.crf import TagScores
from .tags import OUTSIDE, continuations, split_tag
from .tokenizer import is_blank_text


def blank_tokens(doc: Doc) -> np.ndarray:
    """Whether each token of `doc` is blank: whitespace, or invisible characters alone
    (`tokenizer.is_blank`). Only a token outside ASCII can be invisible: those alone are read."""
    flags = doc.to_array(["IS_SPACE", "IS_ASCII"]).reshape(len(doc), 2).astype(bool)
    blank = flags[:, 0].copy()
    for i in np.flatnonzero(~flags[:, 0] & ~flags[:, 1]).tolist():
        blank[i] = is_blank_text(doc[i].text)
    return blank


def chain_of(doc: Doc) -> Optional[np.ndarray]:
    """The indices of `doc`'s tokens on its chain (those not blank), or None where that is
    every token (most documents: nothing to cut)."""
    blank = blank_tokens(doc)
    return np.flatnonzero(~blank) if blank.any() else None


def on_chain(scores: TagScores, chains: Sequence[Optional[np.ndarray]]) -> TagScores:
    """`scores` with each document's emissions cut to the rows of its chain (`chain_of`)."""
    if all(chain is None for chain in chains):
        return scores
    emissions = [
        scores_ if chain is None else scores_[get_array_module(scores_).asarray(chain)]
        for scores_, chain in zip(scores.emissions, chains)
    ]
    return dataclasses.replace(scores, emissions=emissions)


def off_chain(d_chain: TagScores, chains: Sequence[Optional[np.ndarray]], scores: TagScores) -> TagScores:
    """The gradient of the chains' scores (`on_chain`) as the gradient of `scores`: 0 at blank tokens."""
    if all(chain is None for chain in chains):
        return d_chain
    emissions = []
    for d_rows, chain, scores_ in zip(d_chain.emissions, chains, scores.emissions):
        if chain is None:
            emissions.append(d_rows)
            continue
        xp = get_array_module(scores_)
        d_scores = xp.zeros(scores_.shape, dtype=d_rows.dtype)
        d_scores[xp.asarray(chain)] = d_rows
        emissions.append(d_scores)
    return dataclasses.replace(d_chain, emissions=emissions)


def onto_chain(spans: Iterable[Tuple[int, int, str]], chain: np.ndarray) -> List[Tuple[int, int, str]]:
    """Token spans (start, end, label) as spans of the tokens of `chain`; one
    of blank tokens alone is left out."""
    onto = []
    for start, end, label in spans:
        first, stop = np.searchsorted(chain, [start, end])
        if first < stop:
            onto.append((int(first), int(stop), label))
    return onto


@lru_cache(maxsize=64)
def _inside_tags(tags: Tuple[str, ...]) -> Dict[int, int]:
    """Each tag that goes on with an entity (I-, L-) -> the I- tag of its label."""
    goes_on = continuations(tags).any(axis=0)
    return {tag: tags.index(f"I-{split_tag(tags[tag])[1]}") for tag in np.flatnonzero(goes_on).tolist()}


def path_off_chain(
    path: Ints1d, confidence: Floats1d, chain: Optional[np.ndarray], n_tokens: int, tags: Sequence[str]
) -> Tuple[Ints1d, Floats1d]:
    """A path decoded on `chain` (its tag ids into `tags`, a confidence each) laid over
    the `n_tokens` tokens of the document: a blank token between two tokens of an
    entity takes the entity's I- tag and the next token's confidence, any other O and 1."""
    if chain is None:
        return path, confidence
    outside = tags.index(OUTSIDE)
    inside = _inside_tags(tuple(tags))
    full_path = np.full((n_tokens,), outside, dtype=path.dtype)
    full_confidence = np.ones((n_tokens,), dtype=confidence.dtype)
    full_path[chain] = path
    full_confidence[chain] = confidence
    spaces = np.setdiff1d(np.arange(n_tokens), chain, assume_unique=True)
    following = np.searchsorted(chain, spaces)  # the chain token after each blank token
    for space, next_ in zip(spaces.tolist(), following.tolist()):
        if next_ < len(chain) and int(path[next_]) in inside:  # a continuation never opens the chain
            full_path[space] = inside[int(path[next_])]
            full_confidence[space] = confidence[next_]
    return full_path, full_confidence
