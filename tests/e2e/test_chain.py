"""e2e: shots that start from frames of other shots' clips, through the real CLI and the
simulator. The simulator's clip has 24 distinct frames (testsrc, 12 fps, 2 s), so which
frame a create carried is checked against the delivered source clip, decoded here."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import pytest

from tests.e2e.conftest import POLL, Batch, cli_env, run_cli, start_run, wait_for_line

if TYPE_CHECKING:
    from runner.sim import RunningSim
    from tests.plugins.sim_fixtures import StartSim

CHAIN = """\
version: 1
name: chain
defaults:
  seconds: 4
shots:
  - id: s01-wide
    prompt: {first}
    takes: {takes}
  - id: s02-walk
    prompt: she walks out of the wide shot
    mode: first_frame
    images: [{{shot: s01-wide, frame: last}}]
  - id: s03-close
    prompt: a close-up in the same light
    mode: reference
    images: [{{shot: s02-walk, frame: 1.0}}]
"""


def write_chain(batch: Batch, first: str = "a wide empty beach at dawn", takes: int = 1) -> None:
    batch.manifest.write_text(CHAIN.format(first=first, takes=takes), encoding="utf-8")
    batch.shots = ["s01-wide", "s02-walk", "s03-close"]


def run(batch: Batch, base_url: str, *args: str) -> Any:
    return run_cli(
        "run",
        str(batch.manifest),
        "--out",
        str(batch.out),
        "--api-base",
        base_url,
        "--poll-interval",
        POLL,
        *args,
    )


def plan(batch: Batch, *args: str) -> Any:
    return run_cli("plan", str(batch.manifest), "--out", str(batch.out), *args)


def rgb_frames(data: bytes) -> list[bytes]:
    """Every frame of a clip or image, as raw RGB bytes."""
    with av.open(io.BytesIO(data)) as container:
        return [bytes(f.reformat(format="rgb24").planes[0]) for f in container.decode(video=0)]


def sent_image(create: Any) -> bytes:
    """The image bytes a create carried as a data URI (first frame or first reference)."""
    body = create.json
    uri = body.get("first_image_url") or body["images"][0]
    header, payload = uri.split(",", 1)
    assert header == "data:image/png;base64"
    return base64.b64decode(payload)


def creates_by_prompt(sim: RunningSim) -> dict[str, Any]:
    return {r.json["prompt"]: r for r in sim.recorder.creates() if r.created}


def test_a_chain_of_three_renders_in_one_run_each_from_the_intended_frame(
    sim: RunningSim, batch: Batch
) -> None:
    write_chain(batch)
    result = run(batch, sim.base_url)
    assert result.returncode == 0, result.stderr
    assert "done: 3 job(s)" in result.stdout
    creates = creates_by_prompt(sim)
    wide = rgb_frames((batch.out / "s01-wide/take-1.mp4").read_bytes())
    walk = rgb_frames((batch.out / "s02-walk/take-1.mp4").read_bytes())
    assert len(set(wide)) == len(wide) == 24  # distinct frames: the check below means something
    # s02 started from the last frame of s01's delivered clip.
    walk_start = rgb_frames(sent_image(creates["she walks out of the wide shot"]))
    assert walk_start == [wide[-1]]
    # s03's reference is s02's frame at 1.0 s: frame 12 at 12 fps.
    close_ref = rgb_frames(sent_image(creates["a close-up in the same light"]))
    assert close_ref == [walk[12]]
    # Stored beside the job, and its provenance in the sidecar.
    stored = batch.out / "s02-walk/inputs/s01-wide-take1-last.png"
    assert rgb_frames(stored.read_bytes()) == walk_start
    sidecar = json.loads((batch.out / "s02-walk/take-1.json").read_text())
    image = sidecar["request"]["first_image_url"]
    wide_sidecar = json.loads((batch.out / "s01-wide/take-1.json").read_text())
    assert image["shot"] == "s01-wide" and image["take"] == 1 and image["frame"] == "last"
    assert image["clip_sha256"] == wide_sidecar["sha256"]
    assert image["sha256"] == hashlib.sha256(stored.read_bytes()).hexdigest()
    # The contact sheet shows, on the chained take, the frame it started from and its source.
    page = (batch.out / "index.html").read_text()
    assert '<img src="s02-walk/inputs/s01-wide-take1-last.png" alt="last frame"' in page
    assert 'from <a href="#shot-s01-wide">s01-wide</a> take 1, last frame' in page
    assert 'id="shot-s01-wide"' in page


def test_a_cycle_is_refused_with_its_location(tmp_path: Path) -> None:
    manifest = tmp_path / "cycle.yaml"
    manifest.write_text(
        "version: 1\nshots:\n"
        "  - id: a\n    prompt: one\n    mode: first_frame\n"
        "    images: [{shot: c, frame: last}]\n"
        "  - id: b\n    prompt: two\n    mode: first_frame\n"
        "    images: [{shot: a, frame: last}]\n"
        "  - id: c\n    prompt: three\n    mode: first_frame\n"
        "    images: [{shot: b, frame: first}]\n",
        encoding="utf-8",
    )
    for command in (("validate",), ("plan", "--out", str(tmp_path / "out"))):
        result = run_cli(*command[:1], str(manifest), *command[1:])
        assert result.returncode == 2
        assert f"{manifest}:6:14: error: a cycle: a needs c needs b needs a" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_failed_source_holds_its_dependants_with_the_reason(
    start_sim: StartSim, batch: Batch
) -> None:
    write_chain(batch)
    sim = start_sim(fail_rate=1.0)
    result = run(batch, sim.base_url, "--max-attempts", "1")
    assert result.returncode == 1
    prompts = [r.json["prompt"] for r in sim.recorder.creates()]
    assert prompts and set(prompts) == {"a wide empty beach at dawn"}
    assert "s02-walk/1: needs s01-wide, which failed" in result.stdout + result.stderr
    shown = plan(batch)
    assert "needs s01-wide, which failed" in shown.stdout
    # status lists every job, the held ones with their reasons (s02-walk's held is s03's).
    status = run_cli("status", str(batch.manifest), "--out", str(batch.out))
    rows = {tuple(line.split()[:3]): line for line in status.stdout.splitlines()}
    assert rows[("s01-wide", "1", "failed")]
    assert rows[("s02-walk", "1", "pending")].endswith("needs s01-wide, which failed")
    assert rows[("s03-close", "1", "pending")].endswith("needs s02-walk, which failed")
    assert ": 3 job(s) (2 pending, 1 failed)" in status.stdout
    document = json.loads(
        run_cli("status", str(batch.manifest), "--out", str(batch.out), "--json").stdout
    )
    jobs = {entry["shot"]: entry for entry in document["jobs"]}
    assert [entry["shot"] for entry in document["jobs"]] == batch.shots
    assert jobs["s02-walk"]["fingerprint"] is None
    assert jobs["s02-walk"]["waits_for"] == ["s01-wide"]
    assert jobs["s02-walk"]["error"] == "needs s01-wide, which failed"
    assert jobs["s03-close"]["waits_for"] == ["s02-walk"]
    assert jobs["s01-wide"]["waits_for"] == []
    assert document["summary"]["jobs"] == 3 and document["summary"]["pending"] == 2
    # run --json lists them too, each held one failed in this run as its summary says.
    again = run(batch, sim.base_url, "--max-attempts", "1", "--json")
    assert again.returncode == 1
    ran = json.loads(again.stdout)
    outcomes = {entry["shot"]: entry["outcome"] for entry in ran["jobs"]}
    failed = {item["job"] for item in ran["summary"]["failed_jobs"]}
    assert failed == {"s01-wide/1", "s02-walk/1", "s03-close/1"}
    assert outcomes == dict.fromkeys(batch.shots, "failed")


def test_editing_the_first_shot_renders_the_chain_again_and_then_nothing(
    sim: RunningSim, batch: Batch
) -> None:
    write_chain(batch)
    assert run(batch, sim.base_url).returncode == 0
    first_clips = {p: p.read_bytes() for p in batch.clips()}
    write_chain(batch, first="a wide beach at dusk")
    shown = plan(batch)
    assert "needs s01-wide, whose clip changed" in shown.stdout
    assert "waits for s01-wide" in shown.stdout
    before = len(sim.recorder.creates())
    again = run(batch, sim.base_url)
    assert again.returncode == 0, again.stderr
    assert len(sim.recorder.creates()) == before + 3
    for clip in first_clips:
        assert clip.read_bytes() != first_clips[clip]
        assert list((clip.parent / ".history").glob("take-1.*.mp4"))
    sent = len(sim.recorder.requests)
    third = run(batch, sim.base_url)
    assert third.returncode == 0
    assert len(sim.recorder.requests) == sent


def test_kill_9_while_a_dependant_waits_loses_nothing(sim_process: Any, batch: Batch) -> None:
    write_chain(batch)
    base_url, _ = sim_process("--job-seconds", "2")
    process = start_run(batch, base_url)
    try:
        wait_for_line(process, "s01-wide/1 queued")
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    assert not (batch.out / "s02-walk").exists()
    result = run(batch, base_url)
    assert result.returncode == 0, result.stderr
    assert [p.relative_to(batch.out).as_posix() for p in batch.clips()] == [
        "s01-wide/take-1.mp4",
        "s02-walk/take-1.mp4",
        "s03-close/take-1.mp4",
    ]
    # The task in flight at the kill was collected, not paid again.
    renders = batch.renders()
    assert len(renders) == 3 and all(r["attempt"] == 1 for r in renders)


def test_picking_another_take_of_the_source_makes_dependants_stale(
    sim: RunningSim, batch: Batch
) -> None:
    write_chain(batch, takes=2)
    assert run(batch, sim.base_url).returncode == 0
    assert "0 task(s) to submit, 0 s of video" in plan(batch).stdout
    picked = run_cli("pick", str(batch.manifest), "s01-wide", "2", "--out", str(batch.out))
    assert picked.returncode == 0, picked.stderr
    shown = plan(batch)
    assert "take 1: needs s01-wide, whose clip changed; submit" in shown.stdout
    assert "take 1: needs s02-walk, whose clip changed; waits for s02-walk" in shown.stdout


def test_only_renders_what_the_shot_needs_first(sim: RunningSim, batch: Batch) -> None:
    write_chain(batch)
    shown = plan(batch, "--only", "s02-walk")
    assert "s01-wide  1     text" in shown.stdout
    assert "s03-close" not in shown.stdout
    result = run(batch, sim.base_url, "--only", "s02-walk")
    assert result.returncode == 0, result.stderr
    assert [p.relative_to(batch.out).as_posix() for p in batch.clips()] == [
        "s01-wide/take-1.mp4",
        "s02-walk/take-1.mp4",
    ]


@pytest.mark.parametrize("frame", ["first", "0.5"])
def test_a_frame_by_time_or_first(sim: RunningSim, batch: Batch, frame: str) -> None:
    batch.manifest.write_text(
        "version: 1\nshots:\n  - id: a\n    prompt: one\n    seconds: 4\n"
        "  - id: b\n    prompt: two\n    mode: first_frame\n"
        f"    images: [{{shot: a, frame: {frame}}}]\n",
        encoding="utf-8",
    )
    assert run(batch, sim.base_url).returncode == 0
    source = rgb_frames((batch.out / "a/take-1.mp4").read_bytes())
    sent = rgb_frames(sent_image(creates_by_prompt(sim)["two"]))
    assert sent == [source[0 if frame == "first" else 6]]


def test_max_new_counts_the_jobs_that_wait(sim: RunningSim, batch: Batch) -> None:
    write_chain(batch)
    result = run(batch, sim.base_url, "--max-new", "2")
    assert result.returncode == 2
    assert "and 2 more once the clips they need are delivered" in result.stderr
    assert not sim.recorder.creates()


def _provider_image(provider: str, create: Any) -> bytes:
    """The first image a Veo or Runway create carried, as bytes."""
    if provider == "veo":
        image = create.json["instances"][0]["image"]
        assert image["mimeType"] == "image/png"
        return base64.b64decode(image["bytesBase64Encoded"])
    header, payload = create.json["promptImage"][0]["uri"].split(",", 1)
    assert header == "data:image/png;base64"
    return base64.b64decode(payload)


@pytest.mark.parametrize(
    ("provider", "model", "seconds"),
    [("veo", "veo-3.1-generate-preview", 4), ("runway", "gen4.5", 5)],
)
def test_a_chain_on_another_provider_sends_the_frame_it_names(
    start_sim: StartSim, batch: Batch, provider: str, model: str, seconds: int
) -> None:
    key = {"veo": "GEMINI_API_KEY", "runway": "RUNWAYML_API_SECRET"}[provider]
    sim = start_sim(dialect=provider, token="chain-key")
    batch.manifest.write_text(
        f"version: 1\nprovider: {provider}\ndefaults:\n  model: {model}\n"
        f"  seconds: {seconds}\n  aspect_ratio: '16:9'\nshots:\n"
        "  - id: a\n    prompt: one\n"
        "  - id: b\n    prompt: two\n    mode: first_frame\n"
        "    images: [{shot: a, frame: last}]\n",
        encoding="utf-8",
    )
    assert run_cli("validate", str(batch.manifest)).returncode == 0
    result = run_cli(
        "run",
        str(batch.manifest),
        "--out",
        str(batch.out),
        "--api-base",
        sim.base_url,
        "--poll-interval",
        POLL,
        env=cli_env(None, **{key: "chain-key"}),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    creates = [c for c in sim.recorder.creates() if c.created]
    assert len(creates) == 2
    source = rgb_frames((batch.out / "a/take-1.mp4").read_bytes())
    assert len(set(source)) > 1
    assert rgb_frames(_provider_image(provider, creates[1])) == [source[-1]]


TWO = """\
version: 1
defaults:
  seconds: 4
shots:
  - id: a
    prompt: one
  - id: b
    prompt: two
    mode: first_frame
    images: [{shot: a, frame: last}]
"""
PRICES = (
    '[pricing]\ncurrency = "USD"\nunit = "per_second"\n[pricing.models.omni-fast]\ndefault = 0.05\n'
)


def write_priced_pair(batch: Batch) -> None:
    """Shot b starts from a's last frame; each render costs 0.20 USD (4 s at 0.05)."""
    batch.manifest.write_text(TWO, encoding="utf-8")
    (batch.manifest.parent / "shotrunner.toml").write_text(PRICES, encoding="utf-8")


def test_the_money_of_a_run_counts_every_wave(sim: RunningSim, batch: Batch) -> None:
    write_priced_pair(batch)
    result = run(batch, sim.base_url, "--max-cost", "0.40")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len([c for c in sim.recorder.creates() if c.created]) == 2
    assert "money: committed this run 0.40 USD, delivered this run 0.40 USD" in result.stdout


def test_max_cost_holds_for_the_jobs_submitted_once_their_clips_are_there(
    start_sim: StartSim, batch: Batch
) -> None:
    """Shot a fails once and is paid twice: the 0.40 USD allowed are spent, so b, whose
    clip is there only then, is not submitted."""
    write_priced_pair(batch)
    # With this seed the simulator fails the first task and completes the next ones.
    sim = start_sim(fail_rate=0.5, seed=9)
    result = run_cli(
        "run",
        str(batch.manifest),
        "--out",
        str(batch.out),
        "--api-base",
        sim.base_url,
        "--poll-interval",
        POLL,
        "--max-cost",
        "0.40",
        env=cli_env(SHOTRUNNER_INSTANT_RETRY="1"),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    prompts = [c.json["prompt"] for c in sim.recorder.creates() if c.created]
    assert prompts == ["one", "one"]
    assert "b/1: not submitted: --max-cost 0.40 USD reached (0.40 USD committed)" in result.stdout
    assert "money: committed this run 0.40 USD" in result.stdout


def test_plan_shows_the_cost_and_the_request_of_the_jobs_that_wait(batch: Batch) -> None:
    write_priced_pair(batch)
    shown = plan(batch, "--show-requests")
    assert shown.returncode == 0, shown.stderr
    assert "  b/1: 0.20 USD (4 s omni-fast, waits for a)\ntotal: 0.40 USD" in shown.stdout
    head = "b/1 (waits for a; its frames are taken once those clips are delivered):\n"
    assert head in shown.stdout
    body = json.loads(shown.stdout.split(head, 1)[1])
    assert body["first_image_url"]["kind"] == "shot"
    assert body["first_image_url"]["shot"] == "a"
    assert body["first_image_url"]["clip_sha256"] is None
    document = json.loads(plan(batch, "--json").stdout)
    (waiting,) = document["chain"]["waiting"]
    assert waiting["cost"] == "0.20"
    assert waiting["request"]["first_image_url"]["frame"] == "last"
    assert document["summary"]["money"]["total"] == "0.40"


def test_run_plan_holds_the_jobs_that_wait_to_the_saved_plan(sim: RunningSim, batch: Batch) -> None:
    write_priced_pair(batch)
    saved = batch.manifest.parent / "plan.json"
    assert plan(batch, "--save", str(saved)).returncode == 0
    (waiting,) = json.loads(saved.read_text())["waiting"]
    assert waiting == {
        "shot": "b",
        "take": 1,
        "waits_for": ["a"],
        "held": False,
        "images": [],
        "cost": "0.20",
    }
    # The price of b's model (b's alone) changes: the saved plan is not this one any more.
    batch.manifest.write_text(TWO + "    model: omni-pro\n", encoding="utf-8")
    prices = batch.manifest.parent / "shotrunner.toml"
    pro = "[pricing.models.omni-pro]\ndefault = {}\n"
    prices.write_text(PRICES + pro.format("0.05"), encoding="utf-8")
    saved.unlink()
    assert plan(batch, "--save", str(saved)).returncode == 0
    prices.write_text(PRICES + pro.format("0.10"), encoding="utf-8")
    refused = run(batch, sim.base_url, "--plan", str(saved))
    assert refused.returncode == 2
    assert "b/1: cost 0.20 → 0.40 (the prices changed)" in refused.stderr
    assert not sim.recorder.creates()
    prices.write_text(PRICES + pro.format("0.05"), encoding="utf-8")
    result = run(batch, sim.base_url, "--plan", str(saved))
    assert result.returncode == 0, result.stdout + result.stderr
    assert [c.json["prompt"] for c in sim.recorder.creates() if c.created] == ["one", "two"]


def test_validate_locates_each_wrong_frame_of_another_shot(tmp_path: Path) -> None:
    manifest = tmp_path / "frames.yaml"
    manifest.write_text(
        "version: 1\ndefaults:\n  seconds: 4\nshots:\n"
        "  - id: s01-wide\n    prompt: one\n    takes: 2\n    aspect_ratio: '16:9'\n"
        "  - id: s02\n    prompt: two\n    mode: first_frame\n"
        "    images: [{shot: s01-wid, frame: last}]\n"
        "  - id: s03\n    prompt: three\n    mode: first_frame\n"
        "    images: [{shot: s01-wide, frame: 4}]\n"
        "  - id: s04\n    prompt: four\n    mode: reference\n"
        "    images: [{shot: s01-wide, frame: last, take: 3}]\n"
        "  - id: s05\n    prompt: five\n    aspect_ratio: '9:16'\n    mode: first_frame\n"
        "    images: [{shot: s01-wide, frame: first}]\n",
        encoding="utf-8",
    )
    result = run_cli("validate", str(manifest))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert (
        f"{manifest}:12:14: error: unknown shot 's01-wid'; did you mean 's01-wide'?" in (lines[0])
    )
    assert f"{manifest}:16:14: error: frame 4 s is past the end of s01-wide" in lines[1]
    assert f"{manifest}:20:14: error: take 3 of s01-wide does not exist" in lines[2]
    assert (
        f"{manifest}:25:14: warning: s01-wide's aspect ratio is 16:9 but this shot's is 9:16"
        in lines[3]
    )


def test_the_continuity_example_renders_its_story_in_one_simulated_run(tmp_path: Path) -> None:
    from tests.manifest.conftest import copy_examples

    manifest = copy_examples(tmp_path / "examples") / "continuity.yaml"
    out = tmp_path / "out"
    result = run_cli("run", str(manifest), "--simulate", "--out", str(out), env=cli_env(None))
    assert result.returncode == 0, result.stdout + result.stderr
    clips = sorted(p.relative_to(out).as_posix() for p in out.glob("*/take-*.mp4"))
    assert clips == [
        "s01-wide/take-1.mp4",
        "s01-wide/take-2.mp4",
        "s02-walk/take-1.mp4",
        "s03-lamp/take-1.mp4",
        "s04-close/take-1.mp4",
    ]
    assert (out / "s04-close/inputs/s02-walk-take1-1.png").is_file()


def test_a_chain_across_providers_renders_under_simulate(tmp_path: Path) -> None:
    """Shot a on Veo, shot b on Runway from a's last frame: one --simulate run, one simulator
    per provider, b's frame taken from the clip Veo's simulator delivered."""
    manifest = tmp_path / "across.yaml"
    manifest.write_text(
        "version: 1\ndefaults:\n  aspect_ratio: '16:9'\nshots:\n"
        "  - id: a\n    provider: veo\n    model: veo-3.1-generate-preview\n"
        "    prompt: one\n    seconds: 4\n"
        "  - id: b\n    provider: runway\n    model: gen4.5\n    prompt: two\n    seconds: 5\n"
        "    mode: first_frame\n    images: [{shot: a, frame: last}]\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = run_cli("run", str(manifest), "--simulate", "--out", str(out), env=cli_env(None))
    assert result.returncode == 0, result.stdout + result.stderr
    source = rgb_frames((out / "a/take-1.mp4").read_bytes())
    stored = out / "b/inputs/a-take1-last.png"
    assert rgb_frames(stored.read_bytes()) == [source[-1]]
    sidecar = json.loads((out / "b/take-1.json").read_text())
    image = sidecar["request"]["first_image_url"]
    assert image["clip_sha256"] == hashlib.sha256((out / "a/take-1.mp4").read_bytes()).hexdigest()
    assert image["sha256"] == hashlib.sha256(stored.read_bytes()).hexdigest()
    assert {r["provider"] for r in Batch(manifest, out, []).renders()} == {"veo", "runway"}


def test_plan_names_the_source_clip_that_changed_and_no_frame_not_taken_yet(
    sim: RunningSim, batch: Batch
) -> None:
    write_chain(batch)
    assert run(batch, sim.base_url).returncode == 0
    old_clip = hashlib.sha256((batch.out / "s01-wide/take-1.mp4").read_bytes()).hexdigest()
    write_chain(batch, first="a wide beach at dusk")
    assert run(batch, sim.base_url, "--only", "s01-wide").returncode == 0
    new_clip = hashlib.sha256((batch.out / "s01-wide/take-1.mp4").read_bytes()).hexdigest()
    shown = plan(batch)
    assert (
        f"images changed: first_image_url s01-wide take 1, last frame (clip sha256:{old_clip[:8]})"
        f" → s01-wide take 1, last frame (clip sha256:{new_clip[:8]})"
    ) in shown.stdout
    # The PNG left from the old clip is still there; it is not what will be sent.
    assert (batch.out / "s02-walk/inputs/s01-wide-take1-last.png").is_file()
    jobs = {j["shot"]: j for j in json.loads(plan(batch, "--json").stdout)["jobs"]}
    image = jobs["s02-walk"]["request"]["first_image_url"]
    assert image["clip_sha256"] == new_clip and image["sha256"] is None
