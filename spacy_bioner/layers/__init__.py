"""thinc layers: the CRF head and the windowed transformer."""

from .crf import CRFTransitions, TagScores, tag_scores_layer
from .transformer import BioTransformerModel

__all__ = ["BioTransformerModel", "CRFTransitions", "TagScores", "tag_scores_layer"]
