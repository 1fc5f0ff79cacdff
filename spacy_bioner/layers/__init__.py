"""thinc layers: the CRF head and the windowed transformer."""

from .crf import CRFTransitions, TagScores, tag_scores_layer

__all__ = ["CRFTransitions", "TagScores", "tag_scores_layer"]
