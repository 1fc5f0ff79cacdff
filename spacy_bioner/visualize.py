"""displaCy colours for the biomedical labels.

Registered through the `spacy_displacy_colors` entry point, so
`displacy.render(doc, style="ent")` uses them without extra options.
"""

from typing import Dict

# Distinct, light enough for black text: the JNLPBA labels in cool/green
# tones, the BC5CDR labels in warm tones.
DISPLACY_COLORS: Dict[str, str] = {
    "protein": "#7aecec",
    "DNA": "#aa9cfc",
    "RNA": "#c887fb",
    "cell_line": "#9cc9cc",
    "cell_type": "#bfe1d9",
    "Chemical": "#feca74",
    "Disease": "#ff8197",
}
