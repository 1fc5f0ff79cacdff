"""displaCy colours for the biomedical labels, and the gold-beside-predicted
page of `python -m spacy_bioner visualize`.

The colours are registered through the `spacy_displacy_colors` entry point, so
`displacy.render(doc, style="ent")` uses them without extra options.
"""

from typing import Dict, Iterable, List, Sequence, Tuple

from spacy.tokens import Doc, Span

from .annotation import spans_of, taggable_spans

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


def shown_entities(gold: Doc, predicted: Doc, heads: Sequence[str]) -> Tuple[str, List[Span], List[Span]]:
    """What a sample shows: the spans of the heads (`heads`, their span keys)
    whose group `gold` carries, gold and predicted, each side without overlaps
    (`taggable_spans`), which is what `evaluate` scores; where it carries none
    (a corpus with doc.ents only), both docs' doc.ents. Returns a caption
    naming which, and the two span lists.

    Not the predicted doc.ents as they are: they hold every head's entities,
    so a JNLPBA abstract would show the BC5CDR head's chemicals as errors.
    """
    keys = [key for key in heads if key in gold.spans]
    if not keys:
        return "doc.ents", list(gold.ents), list(predicted.ents)
    return (
        ", ".join(keys),
        taggable_spans(span for key in keys for span in spans_of(gold, key)),
        taggable_spans(span for key in keys for span in spans_of(predicted, key)),
    )


def render_side_by_side(
    pairs: Iterable[Tuple[str, Doc, Doc]], heads: Sequence[str] = (), title: str = "spacy-bioner: gold vs predicted"
) -> str:
    """An HTML page: for each (name, gold Doc, predicted Doc), two displaCy
    columns of the entities `shown_entities` picks for the heads `heads`
    (span keys; none: doc.ents).

    Colours come from the `spacy_displacy_colors` entry point
    (DISPLACY_COLORS), so displaCy picks them up without options; they are
    passed explicitly as well so that the page looks the same where the entry
    point is not installed.
    """
    import html

    from spacy import displacy

    options = {"colors": DISPLACY_COLORS}

    def rendered(doc: Doc, spans: Sequence[Span]) -> str:
        entities = [{"start": span.start_char, "end": span.end_char, "label": span.label_} for span in spans]
        data = {"text": doc.text, "ents": entities, "title": None}
        return displacy.render(data, style="ent", manual=True, page=False, jupyter=False, options=options)

    sections = []
    for name, gold, predicted in pairs:
        caption, gold_spans, predicted_spans = shown_entities(gold, predicted, heads)
        sections.append(
            f'<section><h2>{html.escape(name)}</h2><div class="pair">'
            f"<div><h3>gold ({html.escape(caption)})</h3>{rendered(gold, gold_spans)}</div>"
            f"<div><h3>predicted ({html.escape(caption)})</h3>{rendered(predicted, predicted_spans)}</div>"
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
