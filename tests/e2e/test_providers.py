"""Providers end to end: the real CLI against the simulator speaking Veo's and Runway's APIs.

Each provider renders text and frame shots, fails, refuses for safety (never sent again),
hands out expiring links, and survives ``kill -9``; ``validate`` refuses what a model cannot
do; one manifest renders a shot on two providers, side by side in the contact sheet.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import POLL, cli_env, run_cli, wait_for_line
from tests.plugins.images import tiny_png
from tests.plugins.sim_fixtures import StartSim

GEMINI = "gm-test-key-5d1e"
RUNWAY = "rw-test-key-8c2b"
KEYS = {"GEMINI_API_KEY": GEMINI, "RUNWAYML_API_SECRET": RUNWAY}
MODELS = {"veo": "veo-3.1-generate-preview", "runway": "gen4.5"}

SimProcess = Callable[..., tuple[str, Path]]


def write_png(
    path: Path, width: int, height: int, color: tuple[int, int, int] = (200, 80, 40)
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tiny_png(width, height, color))


def write_manifest(folder: Path, provider: str, shots: list[dict[str, Any]]) -> Path:
    """A manifest of ``shots`` on ``provider``, with two frames beside it."""
    write_png(folder / "first.png", 64, 36)
    write_png(folder / "last.png", 64, 36, color=(10, 200, 30))
    manifest = folder / "batch.yaml"
    document = {"version": 1, "name": "prov", "provider": provider, "shots": shots}
    manifest.write_text(json.dumps(document), encoding="utf-8")
    return manifest


def run(manifest: Path, base: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    out = manifest.parent / "out"
    return run_cli(
        "run",
        str(manifest),
        "--out",
        str(out),
        "--api-base",
        base,
        "--poll-interval",
        POLL,
        *args,
        env=cli_env(None, **KEYS, SHOTRUNNER_INSTANT_RETRY="1", **env),
    )


def renders(manifest: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(manifest.parent / "out" / "state.db")
    conn.row_factory = sqlite3.Row
    with conn:
        return [dict(row) for row in conn.execute("select * from renders")]


def clips(manifest: Path) -> list[Path]:
    out = manifest.parent / "out"
    return sorted(p for p in out.rglob("take-*.mp4") if ".history" not in p.parts)


def _veo_shots() -> list[dict[str, Any]]:
    model = MODELS["veo"]
    return [
        {"id": "text", "model": model, "prompt": "waves at dusk", "seconds": 4},
        {
            "id": "first",
            "model": model,
            "mode": "first_frame",
            "images": ["first.png"],
            "prompt": "the sun sets",
            "seconds": 6,
        },
        {
            "id": "refs",
            "model": model,
            "mode": "reference",
            "images": ["first.png", "last.png"],
            "prompt": "a lighthouse",
            "seconds": 8,
        },
    ]


def _runway_shots() -> list[dict[str, Any]]:
    return [
        {"id": "text", "model": "gen4.5", "prompt": "waves at dusk", "seconds": 5},
        {
            "id": "first",
            "model": "gen4.5",
            "mode": "first_frame",
            "images": ["first.png"],
            "prompt": "the sun sets",
            "seconds": 3,
            "aspect_ratio": "1:1",
        },
        {
            "id": "firstlast",
            "model": "veo3.1",
            "mode": "first_last",
            "images": ["first.png", "last.png"],
            "prompt": "sunrise",
            "seconds": 4,
        },
    ]


SHOTS = {"veo": _veo_shots, "runway": _runway_shots}


def test_veo_renders_text_first_frame_and_reference_shots(
    start_sim: StartSim, tmp_path: Path
) -> None:
    sim = start_sim(dialect="veo", token=GEMINI, quirks=True, seed=3)
    manifest = write_manifest(tmp_path, "veo", _veo_shots())
    result = run(manifest, sim.base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(clips(manifest)) == 3
    creates = sim.recorder.creates()
    bodies = {tuple(sorted(c.json["instances"][0])): c.json for c in creates}
    assert ("image", "prompt") in bodies and ("prompt", "referenceImages") in bodies
    refs = bodies[("prompt", "referenceImages")]["instances"][0]["referenceImages"]
    assert [r["referenceType"] for r in refs] == ["ASSET", "ASSET"]
    assert all(isinstance(c.json["parameters"]["durationSeconds"], int) for c in creates)
    # The key went to the API's origin, never to the storage the file URI redirects to.
    assert all(r.headers.get("x-goog-api-key") == GEMINI for r in sim.recorder.on("api"))
    files = sim.recorder.on("files")
    assert files and not any(GEMINI in json.dumps(r.headers) for r in files)
    assert all(r["provider"] == "veo" for r in renders(manifest))


def test_runway_renders_text_first_frame_and_first_last_shots_and_records_its_price(
    start_sim: StartSim, tmp_path: Path
) -> None:
    sim = start_sim(dialect="runway", token=RUNWAY)
    manifest = write_manifest(tmp_path, "runway", _runway_shots())
    result = run(manifest, sim.base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(clips(manifest)) == 3
    bodies = {c.json["model"] + c.path: c.json for c in sim.recorder.creates()}
    first_last = bodies["veo3.1/v1/image_to_video"]["promptImage"]
    assert [image["position"] for image in first_last] == ["first", "last"]
    assert bodies["gen4.5/v1/image_to_video"]["ratio"] == "960:960"
    assert bodies["gen4.5/v1/text_to_video"]["duration"] == 5
    for render in renders(manifest):
        assert render["provider"] == "runway" and render["provider_cost_unit"] == "credits"
        assert render["provider_cost"] is not None and render["provider_cost"] > 0
        assert render["provider_estimated_cost"] is not None
    assert all(RUNWAY not in json.dumps(r.headers) for r in sim.recorder.on("files"))


@pytest.mark.parametrize("provider", ["veo", "runway"])
def test_a_safety_refusal_fails_once_and_is_never_sent_again(
    start_sim: StartSim, tmp_path: Path, provider: str
) -> None:
    key = GEMINI if provider == "veo" else RUNWAY
    sim = start_sim(dialect=provider, token=key, refuse_rate=1.0)
    manifest = write_manifest(tmp_path, provider, SHOTS[provider]()[:1])
    result = run(manifest, sim.base_url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "refused" in result.stdout
    assert sim.recorder.tasks_created == 1
    (render,) = renders(manifest)
    assert render["state"] == "failed" and render["attempt"] == 1
    again = run(manifest, sim.base_url)
    assert again.returncode == 1
    assert sim.recorder.tasks_created == 1


@pytest.mark.parametrize("provider", ["veo", "runway"])
def test_a_failed_task_is_tried_again_up_to_the_attempts(
    start_sim: StartSim, tmp_path: Path, provider: str
) -> None:
    key = GEMINI if provider == "veo" else RUNWAY
    sim = start_sim(dialect=provider, token=key, fail_rate=1.0)
    manifest = write_manifest(tmp_path, provider, SHOTS[provider]()[:1])
    result = run(manifest, sim.base_url, "--max-attempts", "2")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "failed remotely" in result.stdout
    assert sim.recorder.tasks_created == 2
    assert clips(manifest) == []


@pytest.mark.parametrize("provider", ["veo", "runway"])
def test_an_expired_link_is_asked_again_and_the_clip_delivered(
    start_sim: StartSim, tmp_path: Path, provider: str
) -> None:
    key = GEMINI if provider == "veo" else RUNWAY
    sim = start_sim(dialect=provider, token=key, expire_first_url=True)
    manifest = write_manifest(tmp_path, provider, SHOTS[provider]()[:1])
    result = run(manifest, sim.base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(clips(manifest)) == 1
    assert sim.recorder.tasks_created == 1
    assert [r.status for r in sim.recorder.on("files")].count(403) == 1


@pytest.mark.parametrize("provider", ["veo", "runway"])
def test_kill_9_and_the_next_run_collects_the_same_tasks(
    sim_process: SimProcess, tmp_path: Path, provider: str
) -> None:
    base, state = sim_process("--dialect", provider, "--job-seconds", "2")
    manifest = write_manifest(tmp_path, provider, SHOTS[provider]())
    command = [sys.executable, "-m", "runner", "run", str(manifest), "--out"]
    process = subprocess.Popen(
        [*command, str(tmp_path / "out"), "--api-base", base, "--poll-interval", POLL],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(None, **KEYS),
    )
    wait_for_line(process, " queued")
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=10)
    created_before = {r["task_id"] for r in renders(manifest) if r["task_id"]}
    assert created_before
    result = run(manifest, base)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(clips(manifest)) == 3
    # Without idempotency keys, a create cut off by the kill is sent again: every task the
    # service made is counted on its render, and a render sent more than once is flagged.
    rows = renders(manifest)
    with sqlite3.connect(state) as conn:
        (tasks,) = conn.execute("select count(*) from tasks").fetchone()
    assert 3 <= tasks <= sum(r["creates_sent"] for r in rows)
    for row in rows:
        assert row["possible_duplicate"] == (row["creates_sent"] > 1)
    # A task whose create had answered before the kill is collected, not made again.
    answered = {r["task_id"] for r in rows}
    assert len(created_before & answered) >= 1


def test_only_the_keys_of_the_providers_used_are_required(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, "veo", _veo_shots()[:1])
    env = cli_env(None, RUNWAYML_API_SECRET=RUNWAY)
    result = run_cli("run", str(manifest), "--out", str(tmp_path / "out"), env=env)
    assert result.returncode == 2
    assert "GEMINI_API_KEY (for veo)" in result.stderr
    assert "SHOTRUNNER_API_KEY" not in result.stderr and "RUNWAY" not in result.stderr
    assert not (tmp_path / "out" / "state.db").exists() or renders(manifest) == []


def test_validate_refuses_what_a_model_cannot_do_with_its_place_and_what_it_takes(
    tmp_path: Path,
) -> None:
    shots = [
        {"id": "hd", "model": MODELS["veo"], "prompt": "x", "seconds": 4},
        {"id": "lastonly", "provider": "runway", "model": "gen4.5", "prompt": "y"},
    ]
    manifest = tmp_path / "bad.yaml"
    lines = ["version: 1", "provider: veo", "shots:"]
    lines += [f"  - id: {shots[0]['id']}", f"    model: {MODELS['veo']}", "    prompt: x"]
    lines += ["    seconds: 4", "    resolution: 1080p"]
    lines += ["  - id: gen", "    provider: runway", "    model: gen4.5", "    prompt: y"]
    lines += ["    mode: first_last", "    images: [first.png, last.png]", "    seconds: 5"]
    write_png(tmp_path / "first.png", 64, 36)
    write_png(tmp_path / "last.png", 64, 36)
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_cli("validate", str(manifest))
    assert result.returncode == 2
    assert f"{manifest}:8:17: error: veo: {MODELS['veo']} renders 1080p only at 8 s" in (
        result.stderr
    )
    assert "gen4.5 takes a first frame only, not a last frame" in result.stderr
    assert ":13:" in result.stderr  # at the images of the Runway shot
    plan = run_cli("plan", str(manifest), "--out", str(tmp_path / "out"))
    assert plan.returncode == 2


def test_one_manifest_renders_a_shot_on_two_providers_side_by_side(tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "examples" / "manifests" / "two-providers.yaml"
    manifest = tmp_path / "two-providers.yaml"
    manifest.write_text(example.read_text(encoding="utf-8"), encoding="utf-8")
    shutil.copytree(example.parent / "frames", tmp_path / "frames")
    out = tmp_path / "out"
    result = run_cli("run", str(manifest), "--simulate", "--out", str(out), env=cli_env(None))
    assert result.returncode == 0, result.stdout + result.stderr
    providers = {r["provider"] for r in renders(manifest)}
    assert providers == {"veo", "runway"}
    # Each sidecar names the API that rendered its clip (each provider has its simulator).
    sidecars = {
        shot: json.loads((out / shot / "take-1.json").read_text(encoding="utf-8"))
        for shot in ("harbour-veo", "harbour-runway")
    }
    assert {shot: s["provider"] for shot, s in sidecars.items()} == {
        "harbour-veo": "veo",
        "harbour-runway": "runway",
    }
    bases = {s["api_base"] for s in sidecars.values()}
    assert len(bases) == 2 and all(b.startswith("http://127.0.0.1:") for b in bases)
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "harbour-veo" in page and "harbour-runway" in page
    # Each card names the provider that rendered it, beside its model.
    for provider, model in (("veo", MODELS["veo"]), ("runway", "veo3.1")):
        assert f"<dt>provider</dt><dd>{provider}</dd><dt>model</dt><dd>{model}</dd>" in page
    plan = run_cli("plan", str(manifest), "--out", str(tmp_path / "fresh"), "--json")
    assert plan.returncode == 0, plan.stderr
    jobs = {job["shot"]: job["provider"] for job in json.loads(plan.stdout)["jobs"]}
    assert jobs == {"harbour-veo": "veo", "harbour-runway": "runway"}
    table = run_cli("plan", str(manifest), "--out", str(tmp_path / "fresh")).stdout
    assert "PROVIDER" in table and "runway veo3.1" in table


@pytest.mark.parametrize("now", ["gateway", "runway"])
def test_a_task_owed_by_a_provider_the_manifest_left_is_never_asked_with_another_key(
    start_sim: StartSim, tmp_path: Path, now: str
) -> None:
    """A Veo render in flight (the run killed), then the shot moved to another provider: the
    next run is refused before anything is sent, even at the Veo base, so that no other
    provider's key reaches Veo's origin (and no other client asks for Veo's operation)."""
    sim = start_sim(dialect="veo", token=GEMINI, job_seconds=60)
    manifest = write_manifest(tmp_path, "veo", _veo_shots()[:1])
    command = [sys.executable, "-m", "runner", "run", str(manifest), "--out"]
    process = subprocess.Popen(
        [*command, str(tmp_path / "out"), "--api-base", sim.base_url, "--poll-interval", POLL],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(None, **KEYS),
    )
    wait_for_line(process, " queued")
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=10)
    assert [r["provider"] for r in renders(manifest)] == ["veo"]
    moved = {**_veo_shots()[0], "model": "gen4.5", "seconds": 5}
    write_manifest(tmp_path, now, [moved])
    heard = len(sim.recorder.on("api"))
    result = run(manifest, sim.base_url, SHOTRUNNER_API_KEY="gw-test-key-77aa")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "1 task(s) in flight were submitted to veo" in result.stderr
    assert "provider: veo" in result.stderr
    assert len(sim.recorder.on("api")) == heard
    assert [r["state"] for r in renders(manifest)] == ["queued"]


CHAIN = """\
version: 1
name: chain
provider: runway
defaults:
  seconds: 4
  model: veo3.1
shots:
  - id: s01-wide
    prompt: a wide empty beach
  - id: s02-walk
    prompt: she walks out of the wide shot
    mode: first_frame
    images: [{shot: s01-wide, frame: last}]
  - id: s03-veo
    provider: veo
    model: veo-3.1-generate-preview
    prompt: the same beach, later
    mode: first_last
    images: [{shot: s01-wide, frame: last}, {shot: s02-walk, frame: last}]
"""


def test_chained_shots_on_two_providers_render_in_waves_each_through_its_own_api(
    tmp_path: Path,
) -> None:
    """Frames of other shots' clips pass the offline check as the PNGs they are sent as, and
    each wave sends every shot to its own provider's simulator."""
    manifest = tmp_path / "chain.yaml"
    manifest.write_text(CHAIN, encoding="utf-8")
    assert run_cli("validate", str(manifest)).returncode == 0
    out = tmp_path / "out"
    result = run_cli("run", str(manifest), "--simulate", "--out", str(out), env=cli_env(None))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "done: 3 job(s)" in result.stdout
    rows = {r["task_id"]: r for r in renders(manifest)}
    assert sorted(r["provider"] for r in rows.values()) == ["runway", "runway", "veo"]
    veo_task = next(task for task, row in rows.items() if row["provider"] == "veo")
    assert veo_task.startswith("models/veo-3.1-generate-preview/operations/")
    assert len(clips(manifest)) == 3


def test_max_clip_size_reaches_every_provider_s_client(tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "examples" / "manifests" / "two-providers.yaml"
    manifest = tmp_path / "two-providers.yaml"
    manifest.write_text(example.read_text(encoding="utf-8"), encoding="utf-8")
    shutil.copytree(example.parent / "frames", tmp_path / "frames")
    out = tmp_path / "out"
    result = run_cli(
        "run",
        str(manifest),
        "--simulate",
        "--out",
        str(out),
        "--max-clip-size",
        "1K",
        env=cli_env(None, SHOTRUNNER_INSTANT_RETRY="1"),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert clips(manifest) == []
    for shot in ("harbour-veo", "harbour-runway"):
        assert any(
            shot in line and "over the cap of 1,024" in line for line in result.stdout.splitlines()
        ), shot


@pytest.mark.parametrize("provider", ["veo", "runway"])
def test_a_base_with_a_version_is_named_wrong_in_the_provider_s_own_terms(
    start_sim: StartSim, tmp_path: Path, provider: str
) -> None:
    key = GEMINI if provider == "veo" else RUNWAY
    sim = start_sim(dialect=provider, token=key)
    manifest = write_manifest(tmp_path, provider, SHOTS[provider]()[:1])
    result = run(manifest, f"{sim.base_url}/v1")
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"the {provider} API at {sim.base_url}/v1 has no route for creating a task" in (
        result.stderr
    )
    assert "without a version" in result.stderr and "octopusx" not in result.stderr
    assert sim.recorder.tasks_created == 0


def test_an_api_never_reached_is_named_in_the_provider_s_own_terms(tmp_path: Path) -> None:
    """A refused port as the base of a Veo manifest: exit 2 naming that base and Veo's
    origin, not the gateway's variable (Runway's message comes from the same profile
    fields)."""
    provider = "veo"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{probe.getsockname()[1]}"
    manifest = write_manifest(tmp_path, provider, SHOTS[provider]()[:1])
    # Real back-off between connection attempts (not instant): the run still stops at 20 s.
    out = str(tmp_path / "out")
    command = ("run", str(manifest), "--out", out, "--api-base", base)
    result = run_cli(*command, env=cli_env(None, **KEYS))
    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert line.startswith(f"error: cannot reach the API at {base} ("), line
    assert f"check --api-base (the {provider} API's origin, without a version, e.g. https://" in (
        line
    )
    assert "SHOTRUNNER_API_BASE" not in line and "octopusx" not in line


@pytest.mark.parametrize("provider", ["veo", "runway"])
def test_a_download_cut_once_is_resumed_from_where_it_broke(
    start_sim: StartSim, tmp_path: Path, provider: str
) -> None:
    """The file host's knobs work behind every dialect: a clip of ``clip_bytes`` cut after
    1,000 bytes is asked again from byte 1,000, and delivered whole, with one create."""
    key = GEMINI if provider == "veo" else RUNWAY
    sim = start_sim(dialect=provider, token=key, clip_bytes=6000, cut_after=1000, seed=2)
    manifest = write_manifest(tmp_path, provider, SHOTS[provider]()[:1])
    result = run(manifest, sim.base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    (clip,) = clips(manifest)
    assert clip.stat().st_size == 6000
    assert sim.recorder.tasks_created == 1
    ranges = [r.headers.get("range") for r in sim.recorder.on("files")]
    assert ranges[0] is None and "bytes=1000-" in ranges


def test_validate_checks_a_shots_file_s_rows_against_their_provider_and_locates_each_problem(
    tmp_path: Path,
) -> None:
    """A row of a JSONL shots file that names its provider is checked as a shot of the
    manifest is, by ``validate`` as by ``plan``; a problem of the row's own field is located
    in the shots file, one of ``defaults`` in the manifest."""
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "version: 1\nname: rows\ndefaults:\n  resolution: 1080p\nshots_from: shots.jsonl\n",
        encoding="utf-8",
    )
    rows = [
        {"id": "a", "prompt": "waves", "provider": "veo", "model": MODELS["veo"], "seconds": 4},
        {"id": "b", "prompt": "dunes", "provider": "runway", "model": "gen4.5", "seconds": 12},
    ]
    shots = tmp_path / "shots.jsonl"
    shots.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    for command in (["validate"], ["plan", "--out", str(tmp_path / "out")]):
        result = run_cli(*command[:1], str(manifest), *command[1:])
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"{manifest}:4:15: error: veo: {MODELS['veo']} renders 1080p only at 8 s" in (
            result.stderr
        )
        column = json.dumps(rows[1]).index("12") + 1
        assert f"{shots}:2:{column}: error: runway: gen4.5 renders 2 to 10 s, not 12 s" in (
            result.stderr
        )


@pytest.mark.parametrize("provider", ["veo", "runway"])
def test_creates_whose_answers_are_lost_are_counted_flagged_and_capped(
    start_sim: StartSim, tmp_path: Path, provider: str
) -> None:
    """Neither API takes an idempotency key: every create's answer lost, the same create is
    sent at most ``MAX_AMBIGUOUS_SENDS`` times, each counted, the render flagged, then held
    (never sent again by a plain rerun)."""
    from runner.engine.states import MAX_AMBIGUOUS_SENDS

    key = GEMINI if provider == "veo" else RUNWAY
    sim = start_sim(dialect=provider, token=key, drop_rate=1.0)
    manifest = write_manifest(tmp_path, provider, SHOTS[provider]()[:1])
    result = run(manifest, sim.base_url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "possible duplicate" in result.stdout
    assert sim.recorder.tasks_created == MAX_AMBIGUOUS_SENDS
    assert not any("idempotency-key" in r.headers for r in sim.recorder.creates())
    (render,) = renders(manifest)
    assert render["creates_sent"] == MAX_AMBIGUOUS_SENDS and render["possible_duplicate"] == 1
    assert run(manifest, sim.base_url).returncode == 1
    assert sim.recorder.tasks_created == MAX_AMBIGUOUS_SENDS


def test_an_api_base_no_provider_of_the_manifest_would_take_is_refused(
    start_sim: StartSim, tmp_path: Path
) -> None:
    """Veo and Runway shots, no gateway shot: ``--api-base`` would be nobody's, so it is
    refused (exit 2, nothing sent) rather than silently ignored."""
    sim = start_sim(dialect="veo", token=GEMINI)
    shots = [_veo_shots()[0], {**_runway_shots()[0], "id": "rw", "provider": "runway"}]
    manifest = write_manifest(tmp_path, "veo", shots)
    result = run(manifest, sim.base_url)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--api-base is the base of one provider" in result.stderr
    assert "veo, runway" in result.stderr
    assert sim.recorder.on("api") == []


@pytest.mark.parametrize("provider", ["veo", "runway"])
def test_a_refused_key_stops_the_run_and_names_the_provider_s_variable(
    start_sim: StartSim, tmp_path: Path, provider: str
) -> None:
    """A wrong key (Veo answers 400 with API_KEY_INVALID, Runway 401) stops the run, exit 2,
    no job failed: the next run with the right key sends them."""
    key = GEMINI if provider == "veo" else RUNWAY
    sim = start_sim(dialect=provider, token="the-right-key-0000")
    manifest = write_manifest(tmp_path, provider, SHOTS[provider]())
    result = run(manifest, sim.base_url)
    assert result.returncode == 2, result.stdout + result.stderr
    variable = "GEMINI_API_KEY" if provider == "veo" else "RUNWAYML_API_SECRET"
    assert f"check {variable} (and --api-base)" in result.stderr
    assert "SHOTRUNNER_API_BASE" not in result.stderr and key not in result.stdout + result.stderr
    assert sim.recorder.tasks_created == 0 and len(sim.recorder.on("api")) <= 4
    assert all(r["state"] != "failed" for r in renders(manifest))
