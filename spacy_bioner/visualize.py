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


def render_side_by_side(pairs, title: str = "spacy-bioner: gold vs predicted") -> str:
    """An HTML page: for each (name, gold Doc, predicted Doc), two displaCy columns.

    The gold column shows the reference entities (doc.ents), the predicted one
    the pipeline's doc.ents (the union of all heads). Colours come from the
    `spacy_displacy_colors` entry point (DISPLACY_COLORS), so displaCy picks
    them up without options; they are passed explicitly as well so that the
    page looks the same where the entry point is not installed.
    """
    import html
    import warnings

    from spacy import displacy

    options = {"colors": DISPLACY_COLORS}
    sections = []
    for name, gold, predicted in pairs:
        with warnings.catch_warnings():
            # W006, "no entities to visualize": an abstract without entities is a fair sample.
            warnings.filterwarnings("ignore", message=r"\[W006\]")
            gold_html = displacy.render(gold, style="ent", page=False, jupyter=False, options=options)
            pred_html = displacy.render(predicted, style="ent", page=False, jupyter=False, options=options)
        sections.append(
            f'<section><h2>{html.escape(name)}</h2><div class="pair">'
            f'<div><h3>gold</h3>{gold_html}</div><div><h3>predicted</h3>{pred_html}</div>'
            "</div></section>"
        )
    legend = " ".join(
        f'<span class="legend" style="background:{color}">{html.escape(label)}</span>'
        for label, color in DISPLACY_COLORS.items()
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:1.5em} .pair{display:grid;grid-template-columns:1fr 1fr;gap:1.5em}"
        " .pair>div{border:1px solid #ddd;padding:0.5em;overflow-wrap:anywhere}"
        " .legend{padding:0.2em 0.5em;margin-right:0.3em;border-radius:0.3em}"
        " h3{margin:0.2em 0;color:#555} section{margin-bottom:2em}"
        f"</style></head><body><h1>{html.escape(title)}</h1><p>Labels: {legend}</p>"
        + "".join(sections)
        + "</body></html>"
    )
