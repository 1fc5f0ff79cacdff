"""Label Studio exports (JSON and JSON-MIN) to Docs, through the reader and the `convert` command.

The exports are written here in the form Label Studio writes them (a task's
"data", "annotations" with "result" regions, "predictions"; JSON-MIN's flat
records, as label-studio-sdk's converter writes them from a JSON export)."""

import gzip
import json
import lzma
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest
from spacy.tokens import DocBin
from toy import PUBTATOR
from typer.testing import CliRunner

from spacy_bioner.cli import app
from spacy_bioner.corpora import ConversionError, read_label_studio, read_pubtator

Region = Tuple[int, int, str]  # start, end, label


def result(text: str, start: int, end: int, *labels: str, region_id: str = "", to_name: str = "text",
           kind: str = "labels") -> Dict[str, Any]:
    """A result region as Label Studio's editor writes it."""
    return {"id": region_id or f"r{start}-{end}", "type": kind, "from_name": "label", "to_name": to_name,
            "origin": "manual", "value": {"start": start, "end": end, "text": text[start:end], "labels": list(labels)}}


def annotation(annotation_id: int, results: Sequence[Dict[str, Any]], *, updated: str = "2026-12-01T10:00:00Z",
               cancelled: bool = False, ground_truth: bool = False) -> Dict[str, Any]:
    return {"id": annotation_id, "completed_by": 1, "result": list(results), "was_cancelled": cancelled,
            "ground_truth": ground_truth, "created_at": updated, "updated_at": updated, "lead_time": 4.2}


def task(task_id: int, text: str, annotations: Sequence[Dict[str, Any]] = (), predictions: int = 0,
         **data: str) -> Dict[str, Any]:
    return {"id": task_id, "data": {"text": text, **data}, "annotations": list(annotations),
            "predictions": [{"id": k, "result": []} for k in range(predictions)]}


def labelled(task_id: int, text: str, regions: Sequence[Region], annotation_id: Optional[int] = None) -> Dict[str, Any]:
    """A task with one annotation of `regions`."""
    return task(task_id, text, [annotation(annotation_id or task_id, [result(text, *r) for r in regions])])


def json_min(tasks: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The JSON-MIN export of `tasks`, as label-studio-sdk's converter writes it: a record per annotation
    not cancelled (a task without any: one with annotation_id null), the data fields at the top, the
    regions under the Labels control's name with their "type" taken out."""
    records = []
    for item in tasks:
        live = [a for a in item["annotations"] if not a["was_cancelled"]]
        if not item["annotations"]:
            records.append({**item["data"], "id": item["id"], "annotator": None, "annotation_id": None,
                            "created_at": None, "updated_at": None, "lead_time": None})
        for a in sorted(live, key=lambda a: a["created_at"], reverse=True):
            regions = [r["value"] for r in a["result"] if r["type"] == "labels"]
            records.append({**item["data"], "id": item["id"], **({"label": regions} if regions else {}),
                            "annotator": a["completed_by"], "annotation_id": a["id"], "created_at": a["created_at"],
                            "updated_at": a["updated_at"], "lead_time": a["lead_time"]})
    return records


def export(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=2), encoding="utf8")
    return path


def ents(doc) -> List[Tuple[str, str]]:
    return [(e.text, e.label_) for e in doc.ents]


ASPIRIN = "Aspirin prevents myocardial infarction."
CISPLATIN = "Cisplatin nephrotoxicity in rats."


def project_tasks() -> List[Dict[str, Any]]:
    """A project's tasks: one annotated once, one twice (the first marked ground truth, as Label Studio
    marks an annotation imported with its task), one three times (one cancelled), one with a prediction
    only, one with a choices result beside its labels."""
    return [
        labelled(1, ASPIRIN, [(0, 7, "Chemical"), (17, 38, "Disease")]),
        task(2, CISPLATIN, [
            annotation(20, [result(CISPLATIN, 0, 9, "Chemical"), result(CISPLATIN, 10, 24, "Disease"),
                            {"id": "rel", "type": "relation", "from_id": "r0-9", "to_id": "r10-24"}],
                       ground_truth=True, updated="2026-12-01T10:00:00Z"),
            annotation(21, [result(CISPLATIN, 0, 9, "Chemical")], updated="2026-12-02T10:00:00Z"),
        ]),
        task(3, "Heparin.", [annotation(30, [result("Heparin.", 0, 7, "Chemical")], updated="2026-12-01T10:00:00Z"),
                             annotation(31, [], updated="2026-12-03T10:00:00Z"),
                             annotation(32, [result("Heparin.", 0, 7, "Chemical")], updated="2026-12-04T10:00:00Z",
                                        cancelled=True)]),
        task(4, "Not yet annotated.", predictions=1),
        task(5, "Insulin.", [annotation(50, [result("Insulin.", 0, 7, "Chemical"),
                                             {"id": "c", "type": "choices", "from_name": "topic", "to_name": "text",
                                              "value": {"choices": ["drug"]}}])]),
    ]


def test_a_project_export_one_doc_per_annotated_task(tmp_path, bio_nlp):
    """Each annotated task is a Doc with its id and entities (in doc.ents and the spans key), from its
    annotation updated last; cancelled annotations, tasks with predictions only, relations and choices
    are skipped or left out, and counted."""
    with pytest.warns(UserWarning, match=r"2 tasks have several annotations \(\S+ task 2\): each is converted from "
                                         r"the one updated last \(--annotation ground-truth: "):
        docs, report = read_label_studio(export(tmp_path / "project.json", project_tasks()), bio_nlp, spans_key="cdr")
    assert [doc.user_data["pmid"] for doc in docs] == ["1", "2", "3", "5"]
    assert [ents(doc) for doc in docs] == [
        [("Aspirin", "Chemical"), ("myocardial infarction", "Disease")],
        [("Cisplatin", "Chemical")],  # annotation 21, updated after 20
        [],  # annotation 31, updated after 30, marks no entity
        [("Insulin", "Chemical")],
    ]
    assert all(ents(doc) == [(s.text, s.label_) for s in doc.spans["cdr"]] for doc in docs)
    issues = [(i.kind, i.where.split(" ", 1)[1], i.reason) for i in report.issues]
    assert issues == [
        ("skipped", "task 2 annotation 20", "another annotation of the task: 21, the one updated last, is converted"),
        ("skipped", "task 3 annotation 32", "cancelled"),
        ("skipped", "task 3 annotation 30", "another annotation of the task: 31, the one updated last, is converted"),
        ("skipped", "task 4", "not annotated (1 prediction, not read)"),
        ("excluded", "task 5 annotation 50 result c", "a choices result, no entity"),
    ]
    # Each issue is counted with a document of the output, for a dev split.
    assert [i.doc_index for i in report.issues] == [1, 2, 2, 2, 3]
    assert report.documents == 4 and report.entities == {"Chemical": 3, "Disease": 1}


def test_the_annotation_marked_ground_truth_on_request(tmp_path, bio_nlp):
    path = export(tmp_path / "project.json", project_tasks())
    with pytest.warns(UserWarning, match=r"each is converted from the one marked ground truth, or else the one "
                                         "updated last; the others"):
        docs, report = read_label_studio(path, bio_nlp, annotation="ground-truth")
    assert ents(docs[1]) == [("Cisplatin", "Chemical"), ("nephrotoxicity", "Disease")]
    assert [(i.kind, i.where.split(" ", 1)[1], i.reason) for i in report.issues[:2]] == [
        ("skipped", "task 2 annotation 21", "another annotation of the task: 20, marked ground truth, is converted"),
        ("relation", "task 2 annotation 20 result rel", "relation ignored"),
    ]
    # JSON-MIN leaves the mark out: a task annotated more than once cannot be converted so.
    with pytest.raises(ConversionError, match=r"min.json task 2: several annotations, and a JSON-MIN export does not "
                                              "say which is the ground truth: export JSON"):
        read_label_studio(export(tmp_path / "min.json", json_min(project_tasks())), bio_nlp, annotation="ground-truth")


def test_predictions_listed_by_id_as_the_server_exports_them(tmp_path, bio_nlp):
    """Label Studio's server lists a task's predictions (and drafts) by their ids in its JSON export."""
    tasks = [labelled(1, ASPIRIN, [(0, 7, "Chemical")]), task(2, CISPLATIN)]
    tasks[0]["predictions"], tasks[1]["predictions"], tasks[1]["drafts"] = [4], [5, 6], [7]
    docs, report = read_label_studio(export(tmp_path / "x.json", tasks), bio_nlp)
    assert [ents(doc) for doc in docs] == [[("Aspirin", "Chemical")]]
    assert [(i.where.split(" ", 1)[1], i.reason) for i in report.issues] == [
        ("task 2", "not annotated (2 predictions, not read)")]


def test_a_document_id_given_twice_is_warned_of_and_json_min_tasks_are_told_apart_by_their_text(tmp_path, bio_nlp):
    """Two projects' exports joined (task ids start at 1 in each): in JSON-MIN, records of one id and
    another text are another task."""
    first = [labelled(1, ASPIRIN, [(0, 7, "Chemical")])]
    second = [labelled(1, CISPLATIN, [(0, 9, "Chemical")])]
    for name, value in (("joined.json", first + second), ("joined-min.json", json_min(first) + json_min(second))):
        with pytest.warns(UserWarning, match=r"1 task with the document id of an earlier one \(\S+ task 1\)"):
            docs, _ = read_label_studio(export(tmp_path / name, value), bio_nlp)
        assert [(doc.user_data["pmid"], ents(doc)) for doc in docs] == [
            ("1", [("Aspirin", "Chemical")]), ("1", [("Cisplatin", "Chemical")])]
    # Tasks without ids (written by hand) have none to repeat.
    for item in first + second:
        del item["id"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        docs, _ = read_label_studio(export(tmp_path / "no-ids.json", first + second), bio_nlp)
    assert [doc.user_data.get("pmid") for doc in docs] == [None, None]


def test_json_min_converts_as_the_json_export(tmp_path, bio_nlp):
    """The same project exported as JSON-MIN: the same documents, entities and skipped annotations,
    but for what JSON-MIN leaves out (cancelled annotations, relations)."""
    tasks = [
        labelled(1, ASPIRIN, [(0, 7, "Chemical"), (17, 38, "Disease")]),
        task(2, CISPLATIN, [annotation(20, [result(CISPLATIN, 0, 9, "Chemical")], updated="2026-12-01T10:00:00Z"),
                            annotation(21, [result(CISPLATIN, 0, 9, "Chemical"), result(CISPLATIN, 10, 24, "Disease")],
                                       updated="2026-12-02T10:00:00Z")]),
        task(3, "Not yet annotated."),
        task(4, "Nothing to label here.", [annotation(40, [])]),
    ]
    with pytest.warns(UserWarning, match="1 task has several annotations"):
        full = read_label_studio(export(tmp_path / "full.json", tasks), bio_nlp)
    with pytest.warns(UserWarning, match="1 task has several annotations"):
        minimal = read_label_studio(export(tmp_path / "min.json", json_min(tasks)), bio_nlp)
    for docs in (full[0], minimal[0]):
        assert [(doc.user_data["pmid"], ents(doc)) for doc in docs] == [
            ("1", [("Aspirin", "Chemical"), ("myocardial infarction", "Disease")]),
            ("2", [("Cisplatin", "Chemical"), ("nephrotoxicity", "Disease")]),
            ("4", []),
        ]
    assert [(i.kind, i.where.split(" ", 1)[1]) for i in minimal[1].issues] == [
        (i.kind, i.where.split(" ", 1)[1]) for i in full[1].issues] == [
        ("skipped", "task 2 annotation 20"), ("skipped", "task 3")]


def test_the_bc5cdr_test_set_as_a_label_studio_project_converts_as_pubtator(tmp_path, bio_nlp):
    """BC5CDR's test set labelled in Label Studio (a task per abstract, "title abstract" as its text,
    a region per mention): the same tokens and entities as its PubTator file, gzipped as exported."""
    pubtator_docs, _ = read_pubtator(PUBTATOR["test"], bio_nlp)
    tasks, regions, pmid = [], {}, None
    for line in lzma.open(PUBTATOR["test"], "rt", encoding="utf8").read().split("\n"):
        fields = line.split("\t")
        if "|t|" in line:
            pmid, _, title = line.split("|", 2)
        elif "|a|" in line:
            text = f"{title} {line.split('|', 2)[2]}"
            tasks.append(task(int(pmid), text, [annotation(int(pmid), [])]))
            regions[pmid] = tasks[-1]["annotations"][0]["result"]
        elif len(fields) >= 6 and fields[1].isdigit():
            regions[fields[0]].append(result(text, int(fields[1]), int(fields[2]), fields[4],
                                             region_id=f"r{len(regions[fields[0]])}"))
    path = tmp_path / "bc5cdr-test.json.gz"
    path.write_bytes(gzip.compress(json.dumps(tasks).encode("utf8")))
    docs, report = read_label_studio(path, bio_nlp)

    def seen(doc):
        return doc.user_data["pmid"], [t.text for t in doc], [(e.start, e.end, e.label_) for e in doc.ents]

    assert len(docs) == 500 and [seen(doc) for doc in docs] == [seen(doc) for doc in pubtator_docs]
    assert not report.dropped and report.entities == {"Chemical": 5385, "Disease": 4424}


def test_offsets_in_code_points_or_in_utf16_units_as_older_versions_count(tmp_path, bio_nlp):
    """After a character outside the BMP the units differ: read in the other units, an export is an
    error that names the option that reads it, and reads with it."""
    text = "\U0001d6fc-Tocopherol and aspirin."
    start = text.index("aspirin")
    utf16 = len(text[:start].encode("utf-16-le")) // 2
    assert utf16 == start + 1
    for offset, units, other in ((start, "characters", "utf-16"), (utf16, "utf-16", "characters")):
        path = export(tmp_path / f"{units}.json", [task(1, text, [annotation(1, [{
            "id": "a", "type": "labels", "from_name": "label", "to_name": "text",
            "value": {"start": offset, "end": offset + 7, "text": "aspirin", "labels": ["Chemical"]}}])])])
        hint = rf"they match: --offset-units {units} \(or auto, where some mentions count one and some the other\)\)$"
        with pytest.raises(ConversionError, match=r"task 1 annotation 1 result a: the annotation's text 'aspirin' is "
                                                  r"not the text's .* " + hint):
            read_label_studio(path, bio_nlp, offset_units=other)
        docs, _ = read_label_studio(path, bio_nlp, offset_units=units)
        assert ents(docs[0]) == [("aspirin", "Chemical")]


def test_offsets_auto_reads_a_project_of_both_units(tmp_path, bio_nlp):
    """A project labelled partly before, partly after Label Studio's change of units: auto reads each
    region in the units its text fits, says how many counted UTF-16 units, and still refuses a region
    whose text fits neither."""
    text = "\U0001d6fc-Tocopherol and aspirin."
    start = text.index("aspirin")
    tasks = [task(k, f"{text} ({k})", [annotation(k, [{
        "id": "a", "type": "labels", "from_name": "label", "to_name": "text",
        "value": {"start": offset, "end": offset + 7, "text": "aspirin", "labels": ["Chemical"]}}])])
        for k, offset in ((1, start), (2, start + 1))]
    path = export(tmp_path / "both.json", tasks)
    with pytest.warns(UserWarning, match=r"both.json: the offsets of 1 of 2 mentions count UTF-16 units, as Java and "
                                         r"JavaScript count, and were read so \(--offset-units auto\)"):
        docs, _ = read_label_studio(path, bio_nlp, offset_units="auto")
    assert [ents(doc) for doc in docs] == [[("aspirin", "Chemical")]] * 2
    tasks[1]["annotations"][0]["result"][0]["value"]["start"] += 1
    with pytest.raises(ConversionError, match=r"task 2 annotation 2 result a: .* \(read as characters and as UTF-16 "
                                              r"units\)$"):
        read_label_studio(export(tmp_path / "neither.json", tasks), bio_nlp, offset_units="auto")
    result = CliRunner().invoke(app, ["convert", "jsonl", str(path), str(tmp_path / "x.spacy"), "--offset-units",
                                      "auto"])
    assert result.exit_code == 1 and "--offset-units auto needs each mention's text" in result.stderr


@pytest.mark.parametrize(
    "stamps,chosen,why",
    [
        # Django leaves out a zero microsecond; "." sorts before "Z" as text.
        (("2026-12-01T10:00:00Z", "2026-12-01T10:00:00.500000Z"), 2, "the one updated last"),
        (("2026-12-01T10:00:00+02:00", "2026-12-01T09:30:00+00:00"), 2, "the one updated last"),
        ((None, None), 1, "the first (no dates)"),
    ],
)
def test_updated_last_by_time_not_by_text(tmp_path, bio_nlp, stamps, chosen, why):
    annotations = [annotation(k, [result(ASPIRIN, 0, 7, "Chemical")] * (k == 2), updated=stamp)
                   for k, stamp in enumerate(stamps, start=1)]
    with pytest.warns(UserWarning, match="1 task has several annotations"):
        docs, report = read_label_studio(export(tmp_path / "x.json", [task(1, ASPIRIN, annotations)]), bio_nlp)
    assert ents(docs[0]) == ([("Aspirin", "Chemical")] if chosen == 2 else [])
    assert [i.reason for i in report.issues] == [f"another annotation of the task: {chosen}, {why}, is converted"]


def test_json_min_regions_with_no_offsets_are_refused_and_a_data_field_named_data_is_read(tmp_path, bio_nlp):
    record = {"id": 1, "text": ASPIRIN, "annotation_id": 3, "updated_at": None,
              "html": [{"start": "/p[1]", "end": "/p[1]", "startOffset": 0, "endOffset": 7,
                        "hypertextlabels": ["Chemical"]}]}
    with pytest.raises(ConversionError, match=r"task 1 annotation 3 html: HyperText labels give XPaths"):
        read_label_studio(export(tmp_path / "html.json", [record]), bio_nlp)
    record = {"id": 1, "text": ASPIRIN, "data": "a field of the task", "annotation_id": 3,
              "label": [{"start": 0, "end": 7, "text": "Aspirin", "labels": ["Chemical"]}]}
    docs, _ = read_label_studio(export(tmp_path / "min.json", [record]), bio_nlp)
    assert ents(docs[0]) == [("Aspirin", "Chemical")]


def test_json_lines_of_tasks_with_line_separators_inside_their_texts(tmp_path, bio_nlp):
    """U+2028 and U+0085 may stand raw inside a JSON string: a line of JSON Lines ends at "\\n" alone."""
    tasks = [labelled(k, f"Aspirin{sep}prevents infarction.", [(0, 7, "Chemical")]) for k, sep in
             ((1, "\u2028"), (2, "\u0085"))]
    path = tmp_path / "x.jsonl"
    path.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in tasks), encoding="utf8")
    docs, _ = read_label_studio(path, bio_nlp)
    assert [ents(doc) for doc in docs] == [[("Aspirin", "Chemical")]] * 2


def test_offsets_auto_counts_mentions_without_a_text_to_check(tmp_path, bio_nlp):
    item = labelled(1, ASPIRIN, [(0, 7, "Chemical")])
    del item["annotations"][0]["result"][0]["value"]["text"]
    with pytest.warns(UserWarning, match="1 mention came without a text to check, so --offset-units auto read"):
        docs, _ = read_label_studio(export(tmp_path / "x.json", [item]), bio_nlp, offset_units="auto")
    assert ents(docs[0]) == [("Aspirin", "Chemical")]


def test_a_blank_task_id_is_no_id(tmp_path, bio_nlp):
    docs, _ = read_label_studio(export(tmp_path / "x.json", [{**labelled(1, ASPIRIN, []), "id": " "}]), bio_nlp)
    assert "pmid" not in docs[0].user_data


def test_a_region_of_two_labels_keeps_one_and_reports_the_other(tmp_path, bio_nlp):
    """A region may carry several labels; a flat tagging holds one span a token: the other is dropped,
    and counted as lost (towards --max-loss)."""
    path = export(tmp_path / "x.json", [labelled(1, ASPIRIN, [(0, 7, "Chemical", "Drug")])])
    docs, report = read_label_studio(path, bio_nlp)
    assert ents(docs[0]) == [("Aspirin", "Chemical")]
    assert [(i.kind, i.label) for i in report.issues] == [("dropped", "Drug")] and report.loss_fraction == 0.5


def test_each_label_of_a_region_counts_towards_the_loss(tmp_path, bio_nlp):
    """A region of two labels off the tokens is two mentions lost (expanded, and one of them dropped
    too), not one: they share the region's id."""
    text = "Aspirinx relieves headache."
    path = export(tmp_path / "x.json", [labelled(1, text, [(0, 7, "Chemical", "Drug"), (18, 26, "Disease")])])
    docs, report = read_label_studio(path, bio_nlp)
    assert ents(docs[0]) == [("Aspirinx", "Chemical"), ("headache", "Disease")]
    assert report.loss_fraction == pytest.approx(2 / 3)


def test_entity_types_and_the_text_field(tmp_path, bio_nlp):
    tasks = [task(1, ASPIRIN, [annotation(1, [result(ASPIRIN, 0, 7, "Chemical"), result(ASPIRIN, 17, 38, "Disease")])])]
    tasks[0]["data"] = {"abstract": ASPIRIN, "pmid": "123"}
    with pytest.raises(ConversionError, match=r"x.json task 1 data: no 'text' field \(the text; its fields of text: "
                                              r"abstract, pmid\): --text-key names the one"):
        read_label_studio(export(tmp_path / "x.json", tasks), bio_nlp)
    with pytest.warns(UserWarning, match="no mention has the type Gene"):
        docs, report = read_label_studio(tmp_path / "x.json", bio_nlp, text_key="abstract",
                                         entity_types=["Disease", "Gene"])
    assert ents(docs[0]) == [("myocardial infarction", "Disease")]
    assert [(i.kind, i.label) for i in report.issues] == [("excluded", "Chemical")]


def test_the_document_id_from_a_data_field(tmp_path, bio_nlp):
    """--id-key: the id from the task's data (export-tasks writes doc_id), not Label Studio's task id."""
    tasks = [labelled(1, ASPIRIN, [(0, 7, "Chemical")]), labelled(2, CISPLATIN, [])]
    tasks[0]["data"]["doc_id"], tasks[1]["data"]["doc_id"] = "PMID:123", 456
    docs, _ = read_label_studio(export(tmp_path / "x.json", tasks), bio_nlp, id_key="doc_id")
    assert [doc.user_data["pmid"] for doc in docs] == ["PMID:123", "456"]
    with pytest.raises(ConversionError, match=r"x.json task 1 data: no 'pmid' field \(the document id; --id-key"):
        read_label_studio(tmp_path / "x.json", bio_nlp, id_key="pmid")


def test_repeated_texts_are_warned_of(tmp_path, bio_nlp):
    path = export(tmp_path / "x.json", [labelled(7, ASPIRIN, [(0, 7, "Chemical")]), labelled(9, ASPIRIN, [])])
    with pytest.warns(UserWarning, match=r"1 task with the text of an earlier one \(\S+ task 9, as \S+ task 7\)"):
        docs, _ = read_label_studio(path, bio_nlp)
    assert len(docs) == 2


@pytest.mark.parametrize(
    "value,message",
    [
        ([{"id": 1, "text": "Aspirin.", "spans": []}],
         r"x.json task 1: neither a task of Label Studio's JSON export .* use the jsonl format"),
        ([task(1, "Aspirin.", predictions=2)], r"x.json: no annotated task to convert \(1 task or annotation skipped"),
        ([task(1, "/data/upload/3/abstract.txt", [annotation(1, [])])],
         r"task 1: the text '/data/upload/3/abstract.txt' is a reference to a file"),
        ([task(1, ASPIRIN, [annotation(1, [{"id": "h", "type": "hypertextlabels", "value": {
            "start": "/p[1]/text()[1]", "end": "/p[1]/text()[1]", "startOffset": 0, "endOffset": 7,
            "hypertextlabels": ["Chemical"]}}])])], r"task 1 annotation 1 result h: HyperText labels give XPaths"),
        ([task(1, ASPIRIN, [annotation(1, [result(ASPIRIN, 0, 7, "Chemical"),
                                           result(ASPIRIN, 17, 27, "Disease", to_name="title")])])],
         r"result r17-27: labels the text object 'title', where \S+ task 1 annotation 1 result r0-7 labels 'text'"),
        ([task(1, ASPIRIN, [annotation(1, [result(ASPIRIN, 0, 7)])])], r"result r0-7: no labels"),
        ([task(1, ASPIRIN, [annotation(1, [result(ASPIRIN, 0, 70, "Chemical")])])],
         r"result r0-70: offsets 0-70 are no span of the text's 39 characters"),
        ([{"id": 1, "data": "Aspirin.", "annotations": []}], r"task 1: \"data\" is a JSON str"),
        ([{"id": 1, "data": {"text": "Aspirin."}, "annotations": {"result": []}}],
         r"task 1: 'annotations' is no list of objects"),
        ([1], r"x.json: item 1 is a JSON int, not a task"),
    ],
)
def test_bad_exports_are_errors_naming_the_task(tmp_path, bio_nlp, value, message):
    with pytest.raises(ConversionError, match=message):
        read_label_studio(export(tmp_path / "x.json", value), bio_nlp)


def test_a_file_not_json_or_not_utf8_is_an_error_naming_its_line(tmp_path, bio_nlp):
    path = tmp_path / "x.json"
    path.write_bytes(b'[\n  {"id": 1,\n   "data": {"text": "Aspirin\xe9"}}]')
    with pytest.raises(ConversionError, match=r"x.json:3: not UTF-8 text \(byte 0xe9"):
        read_label_studio(path, bio_nlp)
    path.write_bytes(b'[\n  {"id": 1,\n   "data": }]')
    with pytest.raises(ConversionError, match=r"x.json:3: not JSON \(Expecting value\)"):
        read_label_studio(path, bio_nlp)
    path.write_bytes(gzip.compress(json.dumps([labelled(1, ASPIRIN, [])]).encode())[:-12])
    with pytest.raises(ConversionError, match=r"x.json:1: truncated gzip file"):
        read_label_studio(path, bio_nlp)


def test_convert_label_studio_command(tmp_path):
    """The command writes the DocBin, prints the report, and refuses options of other formats."""
    runner = CliRunner()
    tasks = [labelled(1, ASPIRIN, [(0, 7, "Chemical"), (17, 38, "Disease")]), task(2, "Aspirin again.")]
    path = export(tmp_path / "project.json", tasks)
    out = tmp_path / "train.spacy"
    result = runner.invoke(app, ["convert", "label-studio", str(path), str(out), "--spans-key", "cdr"])
    assert result.exit_code == 0, result.output
    assert "records skipped                      1" in result.stdout and "skipped at" in result.stdout
    docs = list(DocBin().from_disk(out).get_docs(__import__("spacy").blank("en").vocab))
    assert [ents(doc) for doc in docs] == [[("Aspirin", "Chemical"), ("myocardial infarction", "Disease")]]
    assert [s.label_ for s in docs[0].spans["cdr"]] == ["Chemical", "Disease"]
    result = runner.invoke(app, ["convert", "label-studio", str(path), str(out), "--discontinuous", "cover",
                                 "--entities-key", "label"])
    assert result.exit_code == 1
    assert "--entities-key and --discontinuous do not apply to label-studio input" in result.stderr
    result = runner.invoke(app, ["convert", "label-studio", str(path), str(out), "--ents-only", "--spans-key", "x"])
    assert result.exit_code == 1 and "give --spans-key or --ents-only, not both" in result.stderr
