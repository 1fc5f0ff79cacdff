"""Every function spacy_bioner registers is declared as an entry point of its
registry, so that spaCy finds it from a config alone, before anything has
imported the module that registers it."""

import re
from importlib.metadata import distribution

from toy import ROOT

# `@registry.losses("spacy_bioner.CRFLoss.v1")` and the like; the one registered
# under a constant is found by its value below.
DECORATOR = re.compile(r'@(?:spacy\.)?registry\.(\w+)\(\s*"(spacy_bioner\.[^"]+)"\s*\)')
GROUPS = {
    "architectures": "spacy_architectures", "losses": "thinc_losses", "scorers": "spacy_scorers",
    "tokenizers": "spacy_tokenizers", "readers": "spacy_readers", "callbacks": "spacy_callbacks",
    "span_getters": "spacy_span_getters",
}


def test_every_registered_function_is_an_entry_point_of_its_registry():
    from spacy_bioner.packaging import RECORD_ENCODER

    registered = {
        (GROUPS[kind], name)
        for path in (ROOT / "spacy_bioner").rglob("*.py")
        for kind, name in DECORATOR.findall(path.read_text(encoding="utf8"))
    } | {("spacy_callbacks", RECORD_ENCODER)}
    declared = {(ep.group, ep.name) for ep in distribution("spacy-bioner").entry_points}
    assert len(registered) > 20
    assert registered - declared == set(), "add these to setup.py's entry_points (and reinstall)"
