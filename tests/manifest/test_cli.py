"""validate and plan through the real command line: output formats and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.manifest.conftest import CliResult, WriteManifest, copy_examples

GOOD = "version: 1\nshots:\n  - {id: a, prompt: p, seconds: 5, takes: 2}\n  - {id: b, prompt: q}\n"


def test_validate_reports_a_valid_file_on_stdout(
    write_manifest: WriteManifest, run_cli: Callable[..., CliResult]
) -> None:
    """A valid manifest: exit 0, a one-line result on stdout, nothing on stderr."""
    write_manifest(GOOD)
    result = run_cli("validate", "m.yaml")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        "m.yaml: valid, 2 shot(s), 3 job(s)\n",
        "",
    )


@pytest.mark.parametrize(
    ("field", "warning"),
    [
        pytest.param(
            "seconds: 2",
            "3:33: warning: seconds 2 is outside the documented range 4 to 30 "
            "(at shots[0].seconds)",
            id="seconds",
        ),
        pytest.param(
            "aspect_ratio: 4:3",
            "3:38: warning: aspect ratio 4:3 is not one the service documents (16:9, 9:16) "
            "(at shots[0].aspect_ratio)",
            id="aspect_ratio",
        ),
    ],
)
def test_validate_prints_warnings_and_exits_0(
    write_manifest: WriteManifest, run_cli: Callable[..., CliResult], field: str, warning: str
) -> None:
    """Warnings go to stderr in the diagnostic format and do not fail."""
    write_manifest(f"version: 1\nshots:\n  - {{id: a, prompt: p, {field}}}\n")
    result = run_cli("validate", "m.yaml")
    assert (result.exit_code, result.stderr) == (0, f"m.yaml:{warning}\n")


def test_plan_prints_warnings_before_its_plan(
    write_manifest: WriteManifest, run_cli: Callable[..., CliResult]
) -> None:
    """plan shows a valid manifest's warnings on stderr and still plans, exit 0."""
    write_manifest("version: 1\nshots:\n  - {id: a, prompt: p, seconds: 45}\n")
    result = run_cli("plan", "m.yaml")
    assert result.exit_code == 0
    assert result.stderr.startswith("m.yaml:3:33: warning: seconds 45 is outside")
    assert "1 task(s) to submit, 45 s of video" in result.stdout


def test_validate_json_lists_each_file(
    write_manifest: WriteManifest, run_cli: Callable[..., CliResult]
) -> None:
    """--json prints the document of docs/running.md; one bad file makes the exit code 2."""
    write_manifest(GOOD)
    write_manifest("version: 1\nshots: [{id: a, prompt: p, takes: 0, seconds: 3}]\n", "bad.yaml")
    result = run_cli("validate", "--json", "m.yaml", "bad.yaml")
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {
        "files": [
            {"path": "m.yaml", "valid": True, "errors": [], "warnings": []},
            {
                "path": "bad.yaml",
                "valid": False,
                "errors": [
                    {
                        "line": 2,
                        "column": 35,
                        "path": "shots[0].takes",
                        "message": "takes must be a whole number from 1 to 20, not 0",
                    }
                ],
                "warnings": [
                    {
                        "line": 2,
                        "column": 47,
                        "path": "shots[0].seconds",
                        "message": "seconds 3 is outside the documented range 4 to 30",
                    }
                ],
            },
        ]
    }


def test_plan_lists_every_job_as_submit(
    write_manifest: WriteManifest, run_cli: Callable[..., CliResult]
) -> None:
    """Without a state store, every job is new: action submit, state pending."""
    write_manifest(GOOD)
    result = run_cli("plan", "m.yaml")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["SHOT", "TAKE", "MODE", "SECONDS", "FINGERPRINT", "ACTION"]
    assert [line.split()[:4] + line.split()[5:] for line in lines[1:4]] == [
        ["a", "1", "text", "5", "submit", "(new", "shot)"],
        ["a", "2", "text", "5", "submit", "(new", "shot)"],
        ["b", "1", "text", "8*", "submit", "(new", "shot)"],
    ]
    assert lines[-1] == (
        "m.yaml -> renders/m: 3 job(s) (3 submit); 3 task(s) to submit, 18 s of video to pay for"
    )


def test_plan_json_follows_the_spec(
    write_manifest: WriteManifest, run_cli: Callable[..., CliResult], workdir: Path
) -> None:
    """plan --json: manifest, output_dir, jobs with every field (null if unset), summary."""
    write_manifest(GOOD)
    result = run_cli("plan", "--json", "--out", "batch", "m.yaml")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert (document["manifest"], document["output_dir"]) == ("m.yaml", str(workdir / "batch"))
    first = document["jobs"][0]
    assert len(first.pop("fingerprint")) == 64
    assert first == {
        "shot": "a",
        "take": 1,
        "provider": "gateway",
        "generation": 1,
        "state": "pending",
        "action": "submit",
        "attempts": 0,
        "task_id": None,
        "progress": None,
        "file": None,
        "error": None,
        "possible_duplicate": False,
        "creates_sent": 0,
        "reason": "new shot",
        "request": {"model": "omni-fast", "prompt": first["request"]["prompt"], "seconds": "5"},
        "cost": None,
    }
    assert document["summary"] == {
        "submit": 3,
        "resume": 0,
        "skip": 0,
        "fetch": 0,
        "retry": 0,
        "hold": 0,
        "jobs": 3,
        "possible_duplicates": 0,
        "tasks_to_submit": 3,
        "seconds_to_pay": 18,
        "earlier_to_collect": 0,
        "possibly_billed": 0,
        "money": None,
    }
    assert document["earlier_renders"] == []


def test_validate_in_a_subprocess_exits_2_with_located_errors(tmp_path: Path) -> None:
    """python -m runner validate: exit 2, diagnostics on stderr, no traceback."""
    manifest = tmp_path / "bad.yaml"
    manifest.write_text("version: 1\nshots:\n  - {id: a/b, prompt: p, resolution: 8k}\n")
    done = subprocess.run(
        [sys.executable, "-m", "runner", "validate", str(manifest)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"{manifest}:3:10: error: shot id 'a/b' may not contain a slash: it names a folder "
        "inside output_dir (at shots[0].id)",
        f"{manifest}:3:38: error: resolution must be one of 720p, 1080p, 2k, 4k, not '8k' "
        "(at shots[0].resolution)",
    ]


def test_plan_in_a_subprocess_refuses_an_alias_bomb(tmp_path: Path) -> None:
    """An alias bomb is refused quickly with exit 2, before it is expanded."""
    rows = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    rows += [
        f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    ]
    manifest = tmp_path / "bomb.yaml"
    manifest.write_text("\n".join(rows) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "runner", "plan", str(manifest)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 2
    assert "alias bomb" in done.stderr and "Traceback" not in done.stderr


def test_plan_of_the_storyboard_example_shows_its_cost(
    tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    """The README's storyboard plans 6 jobs and 52 seconds of video (from a copy, so that a
    batch the README's first command rendered in the examples' folder is not read)."""
    examples = copy_examples(tmp_path / "examples")
    result = run_cli("plan", "--json", str(examples / "storyboard.yaml"))
    assert result.exit_code == 0
    summary = json.loads(result.stdout)["summary"]
    assert (summary["submit"], summary["seconds_to_pay"]) == (6, 52)


SAME_CONTENT = "version: 1\nshots:\n  - {id: a, prompt: waves}\n  - {id: b, prompt: waves}\n"


def test_plan_counts_one_task_for_shots_that_share_a_fingerprint(
    write_manifest: WriteManifest, run_cli: Callable[..., CliResult]
) -> None:
    """Two shots of identical content are one render: the footer says 1 task and 8 s."""
    write_manifest(SAME_CONTENT)
    result = run_cli("plan", "m.yaml")
    assert result.stdout.splitlines()[-1] == (
        "m.yaml -> renders/m: 2 job(s) (2 submit); 1 task(s) to submit, 8 s of video to pay for"
    )


def test_plan_json_counts_one_task_for_shots_that_share_a_fingerprint(
    write_manifest: WriteManifest, run_cli: Callable[..., CliResult]
) -> None:
    """The JSON summary counts jobs by action but tasks and seconds per distinct render."""
    write_manifest(SAME_CONTENT)
    summary = json.loads(run_cli("plan", "--json", "m.yaml").stdout)["summary"]
    assert (summary["submit"], summary["tasks_to_submit"], summary["seconds_to_pay"]) == (2, 1, 8)


def test_status_json_counts_one_task_for_shots_that_share_a_fingerprint(
    write_manifest: WriteManifest, run_cli: Callable[..., CliResult]
) -> None:
    """status sums what a run would pay the same way plan does: per distinct render."""
    write_manifest(SAME_CONTENT)
    summary = json.loads(run_cli("status", "--json", "m.yaml").stdout)["summary"]
    assert (summary["pending"], summary["tasks_to_submit"], summary["seconds_to_pay"]) == (2, 1, 8)


def test_plan_marks_unset_seconds_as_counted_with_a_footnote(
    write_manifest: WriteManifest, run_cli: Callable[..., CliResult]
) -> None:
    """A shot without seconds shows the length it is counted at, marked, explained below."""
    write_manifest("version: 1\nshots:\n  - {id: a, prompt: p}\n")
    lines = run_cli("plan", "m.yaml").stdout.splitlines()
    assert lines[1].split()[3] == "8*"
    assert lines[2] == "* not set: the service's default applies; counted as 8 s"


def test_plan_has_no_footnote_when_every_shot_sets_seconds(
    write_manifest: WriteManifest, run_cli: Callable[..., CliResult]
) -> None:
    """The footnote appears only when some shot leaves seconds to the service."""
    write_manifest("version: 1\nshots:\n  - {id: a, prompt: p, seconds: 5}\n")
    assert "*" not in run_cli("plan", "m.yaml").stdout


def test_validate_json_keeps_stderr_quiet(
    write_manifest: WriteManifest, run_cli: Callable[..., CliResult]
) -> None:
    """With --json the diagnostics are in the document only, not on stderr too; still exit 2."""
    write_manifest("version: 1\nshots: [{id: a, prompt: p, takes: 0, seconds: 3}]\n")
    result = run_cli("validate", "--json", "m.yaml")
    assert (result.exit_code, result.stderr) == (2, "")
    assert len(json.loads(result.stdout)["files"][0]["errors"]) == 1


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param("", "m.yaml:1:1: error: the manifest is empty (at <document>)", id="empty"),
        pytest.param(
            "version: 1\nshots: [a\n",
            "m.yaml:3:1: error: invalid YAML: did not find expected ',' or ']' "
            "(while parsing a flow sequence) (at <document>)",
            id="invalid_yaml",
        ),
        pytest.param(
            "version: 1\n",
            "m.yaml:1:1: error: missing required key 'shots' at the top level "
            "(or shots_from, a file of shots) (at shots)",
            id="missing_key",
        ),
    ],
)
def test_whole_file_problems_say_where(
    write_manifest: WriteManifest, run_cli: Callable[..., CliResult], text: str, line: str
) -> None:
    """A problem of the whole file still ends in (at PATH): the missing key, or <document>."""
    write_manifest(text)
    assert run_cli("validate", "m.yaml").stderr == f"{line}\n"


def test_validate_json_keeps_an_empty_path_for_the_whole_document(
    write_manifest: WriteManifest, run_cli: Callable[..., CliResult]
) -> None:
    """The JSON of a document-level problem has "path": "", not the text's <document>."""
    write_manifest("")
    errors = json.loads(run_cli("validate", "--json", "m.yaml").stdout)["files"][0]["errors"]
    assert errors == [{"line": 1, "column": 1, "path": "", "message": "the manifest is empty"}]


def test_not_utf8_file_says_at_document(workdir: Path, run_cli: Callable[..., CliResult]) -> None:
    """A file that is not UTF-8 is a problem of the whole document: (at <document>)."""
    (workdir / "m.yaml").write_bytes(b"version: 1\n\xff\n")
    assert run_cli("validate", "m.yaml").stderr == (
        "m.yaml:2:1: error: not UTF-8 text (byte 0xff) (at <document>)\n"
    )
