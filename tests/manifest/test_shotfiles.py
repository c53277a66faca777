"""Shots from a file (``shots_from``): CSV, TSV and JSONL rows checked as YAML shots are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner import shotfiles
from runner.errors import ManifestInvalid
from runner.jobs import expand_jobs
from runner.manifest import MAX_FILE_PROBLEMS, check_manifest, load_manifest, validate_manifest
from tests.manifest.conftest import WriteManifest

HEAD = (
    'version: 1\nname: night\nvars: {hero: a cat}\ndefaults: {seconds: 6, aspect_ratio: "9:16"}\n'
)

# One storyboard three ways: a YAML list, a CSV table, JSONL lines.
YAML_SHOTS = """\
shots:
  - id: s1
    prompt: "${hero} walks, slowly\\nthen runs"
    mode: first_frame
    images: [frames/s02.png]
    seconds: 8
  - id: s2
    prompt: a dog sleeps
    takes: 2
  - id: s3
    mode: first_last
    images: [frames/s03-start.png, frames/s03-end.jpg]
    prompt: the camera orbits
    resolution: 720p
"""
CSV_ROWS = (
    "id,prompt,mode,images,seconds,takes,resolution\r\n"
    's1,"${hero} walks, slowly\r\nthen runs",first_frame,frames/s02.png,8,,\r\n'
    "s2,a dog sleeps,,,,2,\r\n"
    "s3,the camera orbits,first_last,frames/s03-start.png; frames/s03-end.jpg,,,720p\r\n"
)
JSONL_ROWS = "\n".join(
    json.dumps(shot)
    for shot in [
        {
            "id": "s1",
            "prompt": "${hero} walks, slowly\nthen runs",
            "mode": "first_frame",
            "images": ["frames/s02.png"],
            "seconds": 8,
        },
        {"id": "s2", "prompt": "a dog sleeps", "takes": 2},
        {
            "id": "s3",
            "mode": "first_last",
            "images": ["frames/s03-start.png", "frames/s03-end.jpg"],
            "prompt": "the camera orbits",
            "resolution": "720p",
        },
    ]
)


def from_file(workdir: Path, write_manifest: WriteManifest, name: str, rows: str | bytes) -> Path:
    """A manifest whose shots are all in ``name``, written with ``rows``."""
    path = workdir / name
    if isinstance(rows, bytes):
        path.write_bytes(rows)
    else:
        path.write_bytes(rows.encode("utf-8"))
    return write_manifest(HEAD + f"shots_from: {name}\n")


def errors(manifest: Path) -> list[str]:
    """Every diagnostic of ``manifest`` as the CLI prints it, named from its folder."""
    found, diagnostics = check_manifest(manifest.name)
    assert found is None
    return [d.format() for d in diagnostics]


def fingerprints(manifest: Path) -> list[tuple[str, str]]:
    return [(job.key, job.fingerprint) for job in expand_jobs(load_manifest(manifest))]


def test_a_storyboard_is_the_same_shots_in_yaml_csv_and_jsonl(
    workdir: Path, write_manifest: WriteManifest
) -> None:
    """The same rows in each format give the same jobs with the same fingerprints."""
    from_yaml = fingerprints(write_manifest(HEAD + YAML_SHOTS))
    assert len(from_yaml) == 4
    from_csv = fingerprints(from_file(workdir, write_manifest, "shots.csv", CSV_ROWS))
    from_jsonl = fingerprints(from_file(workdir, write_manifest, "shots.jsonl", JSONL_ROWS))
    assert from_csv == from_yaml
    assert from_jsonl == from_yaml


def test_a_spreadsheet_export_is_read_as_written(
    workdir: Path, write_manifest: WriteManifest
) -> None:
    """A BOM, CRLF line ends, quoted commas, quotes and line breaks, trailing blank rows."""
    rows = (
        "\ufeffid,prompt,vars.hero\r\n"
        'a,"she says ""hi"", twice\r\nthen leaves",\r\n'
        "b,  ${hero} waits  ,a dog\r\n"
        ",,\r\n"
        "\r\n"
    )
    manifest = load_manifest(from_file(workdir, write_manifest, "shots.csv", rows))
    assert [(s.id, s.prompt) for s in manifest.shots] == [
        ("a", 'she says "hi", twice\nthen leaves'),
        ("b", "a dog waits"),
    ]
    assert [s.seconds for s in manifest.shots] == [6, 6]  # empty cells: the defaults


def test_tsv_is_read_with_tabs(workdir: Path, write_manifest: WriteManifest) -> None:
    """A .tsv file's cells are separated by tabs; commas are text."""
    rows = "id\tprompt\tseconds\na\twaves, at dusk\t9\n"
    (shot,) = load_manifest(from_file(workdir, write_manifest, "shots.tsv", rows)).shots
    assert (shot.prompt, shot.seconds) == ("waves, at dusk", 9)


def test_yaml_shots_come_before_the_files(workdir: Path, write_manifest: WriteManifest) -> None:
    """A mixed manifest lists its own shots first, then the file's, in one storyboard."""
    (workdir / "shots.csv").write_text("id,prompt\nb,second\nc,third\n", encoding="utf-8")
    manifest = load_manifest(
        write_manifest(HEAD + "shots_from: shots.csv\nshots:\n  - {id: a, prompt: first}\n")
    )
    assert [(s.id, s.index) for s in manifest.shots] == [("a", 0), ("b", 1), ("c", 2)]


def test_the_manifests_sha256_covers_its_shots_file(
    workdir: Path, write_manifest: WriteManifest
) -> None:
    """Editing only the shots file changes the manifest's recorded hash."""
    manifest = from_file(workdir, write_manifest, "shots.csv", "id,prompt\na,one\n")
    before = load_manifest(manifest).sha256
    (workdir / "shots.csv").write_text("id,prompt\na,two\n", encoding="utf-8")
    assert load_manifest(manifest).sha256 != before


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        pytest.param(
            "id,prompt,seconds\na,p,8\nb,p,abc\n",
            'shots.csv:3:5: error: column "seconds": seconds must be a whole number from 1 to '
            "99999, not 'abc' (at shots[1].seconds)",
            id="bad_number",
        ),
        pytest.param(
            "id,prompt\na,p\n,p\n",
            "shots.csv:3:1: error: column \"id\": missing required key 'id' in a shot "
            "(at shots[1].id)",
            id="missing_id",
        ),
        pytest.param(
            "id,prompt,secnds\na,p,8\n",
            "shots.csv:1:11: error: unknown column 'secnds' in the header row; did you mean "
            "'seconds'? (columns: id, prompt, mode, images, seconds, takes, aspect_ratio, "
            "resolution, model, vars.NAME) (at <document>)",
            id="unknown_column",
        ),
        pytest.param(
            "id,prompt,mode,images\na,p,first_frame,frames/nope.png\n",
            'shots.csv:2:17: error: column "images": image file not found: frames/nope.png',
            id="missing_image",
        ),
        pytest.param(
            'id,prompt\na,"p, quoted"\na,q\n',
            "shots.csv:3:1: error: column \"id\": duplicate shot id 'a' (first used at line 2) "
            "(at shots[1].id)",
            id="duplicate_id",
        ),
        pytest.param(
            "id,prompt\na,p,extra cell\n",
            "shots.csv:2:5: error: this row has 3 cells but the header names 2 columns "
            "(at <document>)",
            id="too_many_cells",
        ),
        pytest.param(
            "id,prompt,extra\n",
            'shots.csv:1:11: error: column "extra": extra is a mapping',
            id="extra_column",
        ),
    ],
)
def test_each_table_mistake_is_located_to_its_row_and_column(
    workdir: Path, write_manifest: WriteManifest, rows: str, expected: str
) -> None:
    """A typical mistake in a table names the file, its line, the cell's column."""
    found = errors(from_file(workdir, write_manifest, "shots.csv", rows))
    assert any(line.startswith(expected) for line in found), found


def test_every_mistake_of_a_file_is_reported_in_one_pass(
    workdir: Path, write_manifest: WriteManifest
) -> None:
    """Three bad rows, three errors, in the file's order."""
    rows = "id,prompt,seconds,mode\na,p,x,\nb,p,8,sideways\n,p,8,\nc,p,8,\n"
    found = errors(from_file(workdir, write_manifest, "shots.csv", rows))
    assert [line.split(": error:")[0] for line in found] == [
        "shots.csv:2:5",
        "shots.csv:3:7",
        "shots.csv:4:1",
    ]


def test_a_duplicate_id_across_the_manifest_and_the_file_names_both(
    workdir: Path, write_manifest: WriteManifest
) -> None:
    """The row that repeats a YAML shot's id says where the YAML shot is."""
    (workdir / "shots.csv").write_text("id,prompt\nb,p\nTitle,q\n", encoding="utf-8")
    manifest = write_manifest(
        HEAD + "shots_from: shots.csv\nshots:\n  - id: title\n    prompt: neon\n"
    )
    assert errors(manifest) == [
        "shots.csv:3:1: error: column \"id\": shot id 'Title' differs only in case from "
        "'title' (m.yaml:7); ids name folders, so they must differ in more than case "
        "(at shots[2].id)"
    ]


def test_a_problem_of_the_defaults_is_located_in_the_manifest_once(
    workdir: Path, write_manifest: WriteManifest
) -> None:
    """Every row inherits a bad default; the manifest's line is reported, once."""
    (workdir / "shots.csv").write_text("id,prompt\na,p\nb,q\n", encoding="utf-8")
    manifest = write_manifest("version: 1\ndefaults: {seconds: 2}\nshots_from: shots.csv\n")
    found, diagnostics = check_manifest(manifest.name)
    assert found is not None
    assert [d.format() for d in diagnostics] == [
        "m.yaml:2:21: warning: seconds 2 is outside the documented range 4 to 30 "
        "(at defaults.seconds)"
    ]


def test_an_unknown_var_in_a_row_is_located_in_its_prompt_cell(
    workdir: Path, write_manifest: WriteManifest
) -> None:
    """A row's prompt names a var neither the manifest nor its vars columns define."""
    rows = "id,vars.place,prompt\na,beach,${hero} at ${place}\nb,harbour,${hero} at ${plce}\n"
    found = errors(from_file(workdir, write_manifest, "shots.csv", rows))
    assert found == [
        'shots.csv:3:11: error: column "prompt": unknown var ${plce} in prompt; '
        "did you mean 'place'? (at shots[1].prompt)"
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            '{"id": "a", "prompt": "p", "seconds": "8.5"}',
            "shots.jsonl:2:39: error: seconds must be a whole number from 1 to 99999, not '8.5' "
            "(at shots[1].seconds)",
            id="bad_number",
        ),
        pytest.param(
            '{"prompt": "p"}',
            "shots.jsonl:2:1: error: missing required key 'id' in a shot (at shots[1].id)",
            id="missing_id",
        ),
        pytest.param(
            '{"id": "b", "promt": "p"}',
            "shots.jsonl:2:13: error: unknown key 'promt' in a shot; did you mean 'prompt'? "
            "(at shots[1].promt)",
            id="unknown_key",
        ),
        pytest.param(
            '{"id": "b", "prompt": "p",}',
            "shots.jsonl:2:27: error: invalid JSON: Expecting property name enclosed in double "
            "quotes (at <document>)",
            id="invalid_json",
        ),
        pytest.param(
            '{"id": "b", "prompt": "p", "seconds": NaN}',
            "shots.jsonl:2:39: error: NaN is not JSON; write a number (at <document>)",
            id="nan",
        ),
        pytest.param(
            '["b", "p"]',
            'shots.jsonl:2:1: error: each line must be one shot object ({"id": ..., '
            '"prompt": ...}), not a list (at <document>)',
            id="not_an_object",
        ),
        pytest.param(
            '{"id": "b", "prompt": "p", "mode": "reference", "images": ["frames/s02.png", 7]}',
            "shots.jsonl:2:78: error: each item of shots[1].images must be a string, not 7 "
            "(at shots[1].images[1])",
            id="image_not_a_string",
        ),
        pytest.param(
            '{"id": "b", "prompt": "p", "seconds": ' + "9" * 5000 + "}",
            "shots.jsonl:2:1: error: a number too long to read (more than 4,300 digits) "
            "(at <document>)",
            id="huge_number",
        ),
        pytest.param(
            '{"id": "b", "prompt": "p", "extra": {"a": ' + "[" * 2000 + "]" * 2000 + "}}",
            "shots.jsonl:2:1: error: invalid JSON: nested too deeply (at <document>)",
            id="nested_too_deeply",
        ),
        pytest.param(
            '{"id": "b", "prompt": "half \\ud800 a pair"}',
            "shots.jsonl:2:29: error: a \\u escape of half a UTF-16 pair alone is not text "
            "(at <document>)",
            id="lone_surrogate",
        ),
    ],
)
def test_each_jsonl_mistake_is_located_to_its_line_and_column(
    workdir: Path, write_manifest: WriteManifest, line: str, expected: str
) -> None:
    """A typical mistake on a JSONL line names the file, the line and the value's column."""
    rows = '{"id": "a", "prompt": "p"}\n' + line + "\n"
    assert expected in errors(from_file(workdir, write_manifest, "shots.jsonl", rows))


def test_bytes_that_are_not_utf8_are_located(workdir: Path, write_manifest: WriteManifest) -> None:
    """A Latin-1 export is refused at the first byte that is not UTF-8."""
    rows = "id,prompt\na,caf\xe9 au lait\n".encode("latin-1")
    assert errors(from_file(workdir, write_manifest, "shots.csv", rows)) == [
        "shots.csv:2:6: error: not UTF-8 text (byte 0xe9); save the file as UTF-8 (at <document>)"
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("shots.xlsx", "must name a .csv, .tsv or .jsonl file; save a spreadsheet as CSV"),
        ("gone.csv", "cannot read shots file gone.csv: no such file"),
        ("frames", "must name a .csv, .tsv or .jsonl file"),
    ],
)
def test_a_shots_from_that_names_no_readable_file_is_located_in_the_manifest(
    write_manifest: WriteManifest, value: str, expected: str
) -> None:
    """The problem is the manifest's line that names the file."""
    (line,) = errors(write_manifest(f"version: 1\nshots_from: {value}\n"))
    assert line.startswith("m.yaml:2:13: error: ")
    assert expected in line


def test_a_file_without_shots_is_an_error(workdir: Path, write_manifest: WriteManifest) -> None:
    """A header row alone is a storyboard with nothing in it."""
    (line,) = errors(from_file(workdir, write_manifest, "shots.csv", "id,prompt\r\n"))
    assert "shots.csv holds no shots" in line


def test_problems_past_the_limit_are_counted_not_listed(
    workdir: Path, write_manifest: WriteManifest
) -> None:
    """A file whose every row is bad lists the first problems and counts the lines of the
    rest, a row the schema refuses and a missing image alike."""
    rows = "id,prompt,takes,mode,images\n" + "".join(
        f"s{i},p,0,,\n" for i in range(MAX_FILE_PROBLEMS + 5)
    )
    rows += "late,p,,first_frame,frames/nope.png\n"
    found = errors(from_file(workdir, write_manifest, "shots.csv", rows))
    assert len(found) == MAX_FILE_PROBLEMS + 1
    assert found[-1] == (
        f"shots.csv:{MAX_FILE_PROBLEMS + 7}:1: error: problems on 6 more line(s) of this file "
        f"are not listed (the first {MAX_FILE_PROBLEMS:,} problems are) (at <document>)"
    )


def test_validate_counts_the_files_shots_and_jobs(
    workdir: Path, write_manifest: WriteManifest
) -> None:
    """validate_manifest counts what load_manifest would keep, and reports progress."""
    manifest = from_file(workdir, write_manifest, "shots.csv", CSV_ROWS)
    seen: list[tuple[int, int]] = []
    counts, diagnostics = validate_manifest(manifest, progress=lambda *a: seen.append(a))
    assert counts is not None, diagnostics
    assert (counts.shots, counts.jobs) == (3, 4)
    size = (workdir / "shots.csv").stat().st_size
    assert seen[-1] == (size, size)


def test_an_invalid_file_raises_with_every_diagnostic(
    workdir: Path, write_manifest: WriteManifest
) -> None:
    """load_manifest refuses a manifest whose shots file has a bad row."""
    manifest = from_file(workdir, write_manifest, "shots.csv", "id,prompt,takes\na,p,99\n")
    with pytest.raises(ManifestInvalid) as raised:
        load_manifest(manifest)
    assert "takes must be a whole number from 1 to 20, not 99" in str(raised.value.diagnostics)


def test_a_line_past_the_limit_is_reported_and_skipped(
    workdir: Path, write_manifest: WriteManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An overlong line is never held whole: it is reported, and the next line still read."""
    monkeypatch.setattr(shotfiles, "MAX_LINE_BYTES", 2**20)
    rows = '{"id": "a", "prompt": "' + "x" * 2**21 + '"}\n{"id": "b", "prompt": 7}\n'
    assert errors(from_file(workdir, write_manifest, "shots.jsonl", rows)) == [
        "shots.jsonl:1:1: error: this line is longer than 1 MiB; skipped (at <document>)",
        "shots.jsonl:2:23: error: shots[0].prompt must be a string, not 7 (at shots[0].prompt)",
    ]


def test_a_header_name_cannot_act_on_the_terminal(
    workdir: Path, write_manifest: WriteManifest
) -> None:
    """A column name holding an escape sequence is shown with the escape made visible."""
    rows = "id,prompt,\x1b]0;owned\x07\na,p,x\n"
    (line,) = errors(from_file(workdir, write_manifest, "shots.csv", rows))
    assert "\x1b" not in line
    assert "unknown column '\\x1b]0;owned\\x07' in the header row" in line


def test_a_short_row_leaves_its_last_fields_unset(
    workdir: Path, write_manifest: WriteManifest
) -> None:
    """A row with fewer cells than the header (a hand-made file) takes the defaults."""
    rows = "id,prompt,seconds\na,p\n"
    (shot,) = load_manifest(from_file(workdir, write_manifest, "shots.csv", rows)).shots
    assert shot.seconds == 6


def test_the_csv_example_is_the_yaml_storyboard(workdir: Path) -> None:
    """examples/manifests/storyboard-csv.yaml renders exactly what storyboard.yaml does."""
    from tests.manifest.conftest import EXAMPLES

    assert fingerprints(EXAMPLES / "storyboard-csv.yaml") == fingerprints(
        EXAMPLES / "storyboard.yaml"
    )


def test_a_whole_pair_of_surrogate_escapes_is_one_character(
    workdir: Path, write_manifest: WriteManifest
) -> None:
    """``\\ud83c\\udfac`` is U+1F3AC, and an escaped backslash before ``ud800`` is text."""
    rows = '{"id": "a", "prompt": "\\ud83c\\udfac and \\\\ud800"}\n'
    manifest = load_manifest(from_file(workdir, write_manifest, "shots.jsonl", rows))
    assert manifest.shots[0].prompt == "\U0001f3ac and \\ud800"


@pytest.mark.parametrize("name", ["shots.csv", "shots.jsonl"])
def test_a_value_of_megabytes_is_quoted_short(
    workdir: Path, write_manifest: WriteManifest, name: str
) -> None:
    """A hostile row's 100,000-character id and 9,000-digit seconds: each message quotes
    the start of the value and its length, not the value."""
    huge_id, digits = "x" * 100_000, "9" * 9000
    rows = (
        f"id,prompt,seconds\n{huge_id},p,{digits}\n"
        if name == "shots.csv"
        else json.dumps({"id": huge_id, "prompt": "p", "seconds": digits}) + "\n"
    )
    found = errors(from_file(workdir, write_manifest, name, rows))
    assert len(found) == 2 and all(len(line) < 600 for line in found), [len(f) for f in found]
    assert "(100,002 characters in all)" in found[0]
    assert "seconds must be a whole number from 1 to 99999" in found[1]
