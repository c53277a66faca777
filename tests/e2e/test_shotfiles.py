"""Shots from a file end to end: ``validate``, ``plan`` and ``run`` of manifests whose shots
are kept in a spreadsheet's CSV export or a JSONL file, against the real simulator."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runner.sim import RunningSim
from tests.e2e.conftest import POLL, cli_env, run_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "manifests"
HEAD = "version: 1\nname: market\nvars: {hero: a street cook}\ndefaults: {seconds: 4}\n"
# As a spreadsheet saves "CSV UTF-8": a BOM, CRLF row ends, a quoted cell for a comma, a
# doubled quote and a line break.
SPREADSHEET_CSV = (
    "\ufeffid,prompt,mode,images,takes\r\n"
    'wok,"${hero} tosses noodles, flames rise",,,\r\n'
    'sign,"the sign reads ""OPEN""\r\nthen flickers",first_frame,frames/s02.png,2\r\n'
)
JSONL = (
    '{"id": "wok", "prompt": "a street cook tosses noodles, flames rise"}\n'
    "\n"
    '{"id": "sign", "prompt": "the sign reads \\"OPEN\\"\\nthen flickers", '
    '"mode": "first_frame", "images": ["frames/s02.png"], "takes": 2}\n'
)
YAML_SHOTS = """\
shots:
  - id: wok
    prompt: ${hero} tosses noodles, flames rise
  - id: sign
    prompt: "the sign reads \\"OPEN\\"\\nthen flickers"
    mode: first_frame
    images: [frames/s02.png]
    takes: 2
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A batch folder holding the example frames."""
    shutil.copytree(EXAMPLES / "frames", tmp_path / "frames")
    return tmp_path


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_bytes(text.encode("utf-8"))
    return path


def plan_jobs(manifest: Path, out: Path) -> list[dict[str, Any]]:
    result = run_cli("plan", str(manifest), "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    jobs: list[dict[str, Any]] = json.loads(result.stdout)["jobs"]
    return jobs


def run(manifest: Path, out: Path, sim: RunningSim) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "run",
        str(manifest),
        "--out",
        str(out),
        "--api-base",
        sim.base_url,
        "--poll-interval",
        POLL,
    )


def test_a_spreadsheet_export_renders_each_row(folder: Path, sim: RunningSim) -> None:
    """A CSV with a BOM, CRLF and quoted cells validates, and each row is rendered with the
    prompt the spreadsheet holds."""
    write(folder, "shots.csv", SPREADSHEET_CSV)
    manifest = write(folder, "market.yaml", HEAD + "shots_from: shots.csv\n")
    checked = run_cli("validate", str(manifest))
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == f"{manifest}: valid, 2 shot(s), 3 job(s)\n"
    result = run(manifest, folder / "out", sim)
    assert result.returncode == 0, result.stderr
    prompts = sorted(r.json["prompt"] for r in sim.recorder.creates())
    assert prompts == [
        "a street cook tosses noodles, flames rise",
        'the sign reads "OPEN"\nthen flickers',
        'the sign reads "OPEN"\nthen flickers',
    ]
    clips = sorted(p.relative_to(folder / "out").as_posix() for p in folder.rglob("take-*.mp4"))
    assert clips == ["sign/take-1.mp4", "sign/take-2.mp4", "wok/take-1.mp4"]


def test_rows_reordered_in_the_shots_file_reorder_the_contact_sheet(
    folder: Path, sim: RunningSim
) -> None:
    """Reordering rows renders nothing (the shots are the same), but the sheet follows the
    new storyboard order: the shots file dates the page as the manifest does."""
    shots = write(folder, "shots.jsonl", JSONL)
    manifest = write(folder, "market.yaml", HEAD + "shots_from: shots.jsonl\n")
    assert run(manifest, folder / "out", sim).returncode == 0
    page = folder / "out" / "index.html"
    before = page.read_text(encoding="utf-8")
    assert before.index('id="shot-wok"') < before.index('id="shot-sign"')
    lines = JSONL.splitlines(keepends=True)
    shots.write_text(lines[2] + lines[0], encoding="utf-8")
    later = page.stat().st_mtime + 1
    os.utime(shots, (later, later))
    again = run(manifest, folder / "out", sim)
    assert again.returncode == 0, again.stderr
    assert "plan: 0 task(s) to submit" in again.stderr
    after = page.read_text(encoding="utf-8")
    assert after.index('id="shot-sign"') < after.index('id="shot-wok"')


def test_a_jsonl_file_renders_each_line(folder: Path, sim: RunningSim) -> None:
    """One shot object per line, blank lines skipped, rendered like YAML shots."""
    write(folder, "shots.jsonl", JSONL)
    manifest = write(folder, "market.yaml", HEAD + "shots_from: shots.jsonl\n")
    result = run(manifest, folder / "out", sim)
    assert result.returncode == 0, result.stderr
    assert len(sim.recorder.creates()) == 3
    assert "done: 3 job(s)" in result.stdout


def test_moving_a_storyboard_from_yaml_to_csv_renders_nothing_again(
    folder: Path, sim: RunningSim
) -> None:
    """The same shots from YAML, CSV and JSONL have the same fingerprints in plan --json;
    after a run of the YAML, the CSV's plan skips every job."""
    from_yaml = write(folder, "yaml.yaml", HEAD + YAML_SHOTS)
    write(folder, "shots.csv", SPREADSHEET_CSV)
    from_csv = write(folder, "csv.yaml", HEAD + "shots_from: shots.csv\n")
    write(folder, "shots.jsonl", JSONL)
    from_jsonl = write(folder, "jsonl.yaml", HEAD + "shots_from: shots.jsonl\n")
    out = folder / "out"

    def identities(manifest: Path) -> list[tuple[str, int, str]]:
        return [(j["shot"], j["take"], j["fingerprint"]) for j in plan_jobs(manifest, out)]

    assert len(identities(from_yaml)) == 3
    assert identities(from_csv) == identities(from_yaml)
    assert identities(from_jsonl) == identities(from_yaml)
    assert run(from_yaml, out, sim).returncode == 0
    assert [j["action"] for j in plan_jobs(from_csv, out)] == ["skip", "skip", "skip"]


def test_a_mixed_manifest_renders_its_own_shots_then_the_files(
    folder: Path, sim: RunningSim
) -> None:
    """Shots listed in the manifest come first, the file's after them, one batch."""
    write(folder, "shots.csv", "id,prompt\r\nb,the market at night\r\nc,rain on awnings\r\n")
    manifest = write(
        folder,
        "market.yaml",
        HEAD + "shots_from: shots.csv\nshots:\n  - id: a\n    prompt: neon sign flickers on\n",
    )
    assert [j["shot"] for j in plan_jobs(manifest, folder / "out")] == ["a", "b", "c"]
    result = run(manifest, folder / "out", sim)
    assert result.returncode == 0, result.stderr
    assert sorted(p.parent.name for p in (folder / "out").rglob("take-1.mp4")) == ["a", "b", "c"]


def test_each_typical_mistake_is_located_and_nothing_is_sent(folder: Path, sim: RunningSim) -> None:
    """A missing id, a duplicate id across YAML and CSV, a bad number, an unknown column and
    an image that does not exist: each on its row and column, exit 2, no request."""
    write(
        folder,
        "shots.csv",
        "id,prompt,seconds,mode,images,colour\r\n"
        ",no id here,,,,\r\n"
        "title,the same id as the manifest's,,,,\r\n"
        "c,a bad number,six,,,\r\n"
        "d,a frame that is not there,,first_frame,frames/missing.png,\r\n",
    )
    manifest = write(
        folder,
        "market.yaml",
        HEAD + "shots_from: shots.csv\nshots:\n  - id: title\n    prompt: the title card\n",
    )
    result = run(manifest, folder / "out", sim)
    assert result.returncode == 2
    csv = str(folder / "shots.csv")
    lines = result.stderr.splitlines()
    expected = [
        f"{csv}:1:31: error: unknown column 'colour' in the header row",
        f"{csv}:2:1: error: column \"id\": missing required key 'id' in a shot (at shots[1].id)",
        f"{csv}:3:1: error: column \"id\": duplicate shot id 'title' (first used at "
        f"{manifest}:7) (at shots[2].id)",
        f'{csv}:4:16: error: column "seconds": seconds must be a whole number from 1 to 99999, '
        "not 'six' (at shots[3].seconds)",
        f'{csv}:5:42: error: column "images": image file not found: frames/missing.png',
    ]
    for want in expected:
        assert any(line.startswith(want) for line in lines), (want, lines)
    assert sim.recorder.requests == []
    assert not (folder / "out").exists()


def test_validate_shows_its_progress_on_a_terminal_only(folder: Path) -> None:
    """On a terminal, stderr shows the rows being checked; on a pipe, nothing but results."""
    rows = "".join(json.dumps({"id": f"s{i}", "prompt": f"p {i}"}) + "\n" for i in range(5000))
    write(folder, "shots.jsonl", rows)
    manifest = write(folder, "big.yaml", HEAD + "shots_from: shots.jsonl\n")
    piped = run_cli("validate", str(manifest))
    assert piped.returncode == 0
    assert piped.stderr == ""
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "runner", "validate", manifest.name],
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=follower,
            env=cli_env(TERM="xterm"),
            timeout=60,
            check=False,
        )
        os.close(follower)
        shown = _read_all(leader)
    finally:
        os.close(leader)
    assert done.returncode == 0
    assert done.stdout.decode() == "big.yaml: valid, 5000 shot(s), 5000 job(s)\n"
    assert "checking big.yaml" in shown


def _read_all(fd: int) -> str:
    """What the process wrote to the terminal, up to its close."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the other end closed (Linux raises EIO)
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")
