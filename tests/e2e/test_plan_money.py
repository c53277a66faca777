"""``plan`` like terraform, through the real CLI and the simulator: the request previewed is
the request sent, each submit says why, prices, ``--max-cost`` and ``run --plan``."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from runner.sim import RunningSim
from tests.e2e.conftest import INSTANT, POLL, Batch, RunBatch, cli_env, run_cli
from tests.plugins.images import tiny_png
from tests.plugins.sim_fixtures import StartSim

PRICES = """\
[pricing]
currency = "USD"
unit = "per_second"

[pricing.models.omni-fast]
720p = 0.05
default = 0.10
"""


def plan_json(batch: Batch, *args: str) -> dict[str, Any]:
    result = run_cli("plan", str(batch.manifest), "--out", str(batch.out), "--json", *args)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def reasons(batch: Batch, *args: str) -> dict[str, str | None]:
    return {j["shot"]: j["reason"] for j in plan_json(batch, *args)["jobs"]}


def with_prices(batch: Batch) -> None:
    (batch.manifest.parent / "shotrunner.toml").write_text(PRICES, encoding="utf-8")


def test_the_previewed_request_is_the_request_the_simulator_receives(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """An image shot: same fields, and the data URI sent hashes to the sha256 shown."""
    image = batch.manifest.parent / "frame.png"
    image.write_bytes(tiny_png())
    batch.manifest.write_text(
        "version: 1\nname: e2e\nvars:\n  light: golden hour\nshots:\n"
        "  - id: s01\n    prompt: waves at ${light}\n    seconds: 4\n    resolution: 720p\n"
        "    aspect_ratio: '16:9'\n    mode: first_frame\n    images: [frame.png]\n",
        encoding="utf-8",
    )
    text = run_cli("plan", str(batch.manifest), "--out", str(batch.out), "--show-requests")
    assert text.returncode == 0, text.stderr
    assert "base64" not in text.stdout
    (job,) = plan_json(batch)["jobs"]
    preview = job["request"]
    assert preview["prompt"] == "waves at golden hour"
    assert json.dumps(preview, indent=2) in text.stdout

    assert run_batch(sim.base_url).returncode == 0
    (create,) = sim.recorder.creates()
    sent = dict(create.json)
    sent_image = sent.pop("first_image_url")
    shown_image = preview.pop("first_image_url")
    assert sent == preview
    header, encoded = sent_image.split(",", 1)
    assert header.endswith(";base64")
    assert hashlib.sha256(base64.b64decode(encoded)).hexdigest() == shown_image["sha256"]
    assert shown_image["source"] == "frame.png"


def test_each_reason_appears_after_its_edit(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    batch.write({"s01": "waves at golden hour", "s02": "a lighthouse", "s03": "gulls"})
    assert reasons(batch) == dict.fromkeys(["s01", "s02", "s03"], "new shot")
    assert run_batch(sim.base_url).returncode == 0
    assert reasons(batch) == dict.fromkeys(["s01", "s02", "s03"], None)

    text = batch.manifest.read_text(encoding="utf-8").replace("golden hour", "blue hour")
    batch.manifest.write_text(text.replace("seconds: 4", "seconds: 4\n  resolution: 720p"))
    found = reasons(batch)
    assert "prompt changed: - golden / + blue" in str(found["s01"])
    assert "resolution changed: unset → 720p" in str(found["s02"])

    batch.write({"s01": "waves at golden hour", "s02": "a lighthouse", "s03": "gulls"}, seconds=6)
    assert reasons(batch)["s03"] == "seconds changed: 4 → 6"
    batch.write({"s01": "waves at golden hour", "s02": "a lighthouse", "s03": "gulls"})

    assert reasons(batch, "--force", "s02")["s02"] == "--force"
    (batch.out / "s03/take-1.mp4").unlink()
    assert reasons(batch)["s03"] == "clip lost on disk"
    reject = run_cli("reject", str(batch.manifest), "s01", "1", "--out", str(batch.out))
    assert reject.returncode == 0, reject.stderr
    assert reasons(batch, "--rerender-rejected")["s01"] == "rejected take (--rerender-rejected)"


def test_a_shot_moved_to_another_provider_says_so(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """The provider is named in the reason, beside what else changed with it."""
    batch.write({"s01": "waves", "s02": "dunes"})
    assert run_batch(sim.base_url).returncode == 0
    text = batch.manifest.read_text(encoding="utf-8")
    moved = "    provider: veo\n    model: veo-3.1-generate-preview\n"
    batch.manifest.write_text(text.replace("    prompt: dunes\n", "    prompt: dunes\n" + moved))
    assert reasons(batch) == {
        "s01": None,
        "s02": "provider changed: gateway → veo; "
        "model changed: omni-fast → veo-3.1-generate-preview",
    }


def test_a_shot_edited_after_its_database_was_lost_is_compared_with_its_clip(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """No state.db (lost, or a copied folder): the clip's sidecar in the shot's folder says
    what changed, where the store would have; a shot with no clip there is new."""
    batch.write({"s01": "waves at golden hour", "s02": "dunes"})
    assert run_batch(sim.base_url).returncode == 0
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        (batch.out / name).unlink(missing_ok=True)
    batch.write({"s01": "waves at blue hour", "s02": "dunes", "s03": "gulls"})
    assert reasons(batch) == {
        "s01": "prompt changed: - golden / + blue, since the clip in its folder (unknown to "
        "the store)",
        "s02": "clip on disk, unknown to the store: taken back",
        "s03": "new shot",
    }
    table = run_cli("plan", str(batch.manifest), "--out", str(batch.out)).stdout.splitlines()
    (line,) = [row for row in table if row.startswith("s02 ")]
    assert line.endswith("fetch (clip on disk, unknown to the store: taken back)"), line


def test_an_image_change_names_the_image_and_both_hashes(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    image = batch.manifest.parent / "frame.png"
    image.write_bytes(tiny_png())
    batch.manifest.write_text(
        "version: 1\nname: e2e\nshots:\n  - id: s01\n    prompt: waves\n    seconds: 4\n"
        "    mode: first_frame\n    images: [frame.png]\n",
        encoding="utf-8",
    )
    assert run_batch(sim.base_url).returncode == 0
    old = hashlib.sha256(image.read_bytes()).hexdigest()
    image.write_bytes(tiny_png(rgb=(10, 20, 30)))
    new = hashlib.sha256(image.read_bytes()).hexdigest()
    reason = reasons(batch)["s01"]
    assert reason == f"images changed: first_image_url sha256:{old[:8]} → sha256:{new[:8]}"


def test_a_failed_render_says_its_error(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch
) -> None:
    failing = start_sim(fail_rate=1.0)
    batch.write({"s01": "waves"})
    assert run_batch(failing.base_url, "--max-attempts", "1", env=INSTANT).returncode == 1
    reason = reasons(batch, "--retry-failed")["s01"]
    assert reason is not None and reason.startswith("failed earlier: ")
    assert len(reason) > len("failed earlier: ")


def test_plan_shows_money_with_prices_and_says_how_to_add_them_without(batch: Batch) -> None:
    plain = run_cli("plan", str(batch.manifest), "--out", str(batch.out))
    assert "no prices: add a [pricing] table to shotrunner.toml" in plain.stdout
    assert "16 s of video to pay for" in plain.stdout
    with_prices(batch)
    priced = run_cli("plan", str(batch.manifest), "--out", str(batch.out))
    assert priced.returncode == 0, priced.stderr
    # Four shots of 4 s without a resolution: the default price, 0.10 a second.
    assert "s01/1: 0.40 USD (4 s omni-fast)" in priced.stdout
    assert "total: 1.60 USD" in priced.stdout
    assert "worst case with --max-attempts retries: 4.80 USD" in priced.stdout
    money = plan_json(batch, "--max-attempts", "2")["summary"]["money"]
    assert money == {
        "currency": "USD",
        "total": "1.60",
        "worst_case": "3.20",
        "worst_case_extra": "1.60",
        "unpriced": [],
        "waiting": {},
    }


def test_a_plan_with_nothing_to_submit_says_so_instead_of_a_zero_total(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    with_prices(batch)
    assert run_batch(sim.base_url).returncode == 0
    priced = run_cli("plan", str(batch.manifest), "--out", str(batch.out))
    assert priced.returncode == 0, priced.stderr
    assert "Cost: nothing to submit (0.00 USD)" in priced.stdout
    assert "total:" not in priced.stdout


def test_a_price_table_the_schema_refuses_exits_2_with_its_location(batch: Batch) -> None:
    (batch.manifest.parent / "shotrunner.toml").write_text(
        PRICES.replace('currency = "USD"', 'currency = "dollars"'), encoding="utf-8"
    )
    result = run_cli("plan", str(batch.manifest), "--out", str(batch.out))
    assert result.returncode == 2
    assert "shotrunner.toml:2:1: error:" in result.stderr


def test_max_cost_refuses_before_sending(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    with_prices(batch)
    result = run_batch(sim.base_url, "--max-cost", "1.50")
    assert result.returncode == 2
    assert "the plan costs 1.60 USD, more than --max-cost 1.50 USD; nothing was sent" in (
        result.stderr
    )
    assert sim.recorder.requests == []
    assert not (batch.out / "state.db").exists() or batch.renders() == []


def test_max_cost_stops_resubmissions_during_the_run(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch
) -> None:
    """Every task fails: the first creates fit, resubmissions past the amount are held."""
    failing = start_sim(fail_rate=1.0)
    with_prices(batch)
    batch.write({"s01": "waves", "s02": "gulls"})
    result = run_batch(failing.base_url, "--max-cost", "1.20", "--max-attempts", "3", env=INSTANT)
    assert result.returncode == 1, result.stdout + result.stderr
    # 0.40 each: two first creates and one resubmission fit in 1.20, no fourth.
    assert failing.recorder.tasks_created == 3
    assert "(8 s of video, 0.80 USD, worst case 2.40 USD)" in result.stderr
    assert "not submitted: --max-cost 1.20 USD reached (1.20 USD committed)" in result.stdout
    assert "money: committed this run 1.20 USD, delivered this run 0.00 USD" in result.stdout
    with batch.db() as conn:
        (summary,) = conn.execute("select summary from runs").fetchone()
    assert json.loads(summary)["money"] == {
        "currency": "USD",
        "planned": "0.80",
        "worst_case": "2.40",
        "committed": "1.20",
        "delivered": "0.00",
    }


def test_creates_that_created_nothing_commit_no_money(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch
) -> None:
    """Creates refused with the key (401) created nothing: the run stops with nothing
    counted as committed, as it says nothing was billed."""
    sim = start_sim(token="the-right-key")
    with_prices(batch)
    batch.write({"s01": "waves", "s02": "gulls"})
    result = run_batch(sim.base_url, env=cli_env("a-wrong-key"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "refused the key" in result.stderr
    assert "money: committed this run 0.00 USD, delivered this run 0.00 USD" in result.stdout
    assert sim.recorder.tasks_created == 0


def test_run_plan_executes_the_saved_plan_and_refuses_a_changed_manifest(
    sim: RunningSim, batch: Batch, tmp_path: Path
) -> None:
    saved = tmp_path / "plan.json"
    made = run_cli("plan", str(batch.manifest), "--out", str(batch.out), "--save", str(saved))
    assert made.returncode == 0, made.stderr
    document = json.loads(saved.read_text(encoding="utf-8"))
    assert [j["action"] for j in document["jobs"]] == ["submit"] * 4

    batch.write({"s01": "an edited prompt", "s02": "b", "s03": "c", "s04": "d"})
    command = ["run", str(batch.manifest), "--out", str(batch.out), "--api-base", sim.base_url]
    refused = run_cli(*command, "--poll-interval", POLL, "--plan", str(saved))
    assert refused.returncode == 2
    assert "the plan changed since it was saved: s01/1: the manifest or its images changed" in (
        refused.stderr
    )
    assert sim.recorder.requests == []

    made = run_cli("plan", str(batch.manifest), "--out", str(batch.out), "--save", str(saved))
    assert made.returncode == 0
    ran = run_cli(*command, "--poll-interval", POLL, "--plan", str(saved))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert sim.recorder.tasks_created == 4


def test_run_plan_refuses_another_max_attempts_and_keeps_the_saved_one(
    start_sim: StartSim, batch: Batch, tmp_path: Path
) -> None:
    """The saved plan's worst case counted its --max-attempts: another is refused, and the
    saved one is the limit the run keeps (a render that fails every time: 2 creates)."""
    saved = tmp_path / "plan.json"
    plan = ("plan", str(batch.manifest), "--out", str(batch.out), "--only", "s01")
    made = run_cli(*plan, "--max-attempts", "2", "--save", str(saved))
    assert made.returncode == 0, made.stderr
    sim = start_sim(fail_rate=1.0)
    command = ["run", str(batch.manifest), "--out", str(batch.out), "--api-base", sim.base_url]
    again = ("--poll-interval", POLL, "--plan", str(saved))
    refused = run_cli(*command, *again, "--max-attempts", "5")
    assert refused.returncode == 2
    assert "made with --max-attempts 2" in refused.stderr and "leave --max-attempts 5 out" in (
        refused.stderr
    )
    assert sim.recorder.requests == []
    ran = run_cli(*command, *again)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert sim.recorder.tasks_created == 2


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"max_attempts": 12.5}, "options.max_attempts must be a whole number from 1"),
        ({"max_attempts": -5}, "options.max_attempts must be a whole number from 1"),
        ({"max_attempts": "abc"}, "options.max_attempts must be a whole number from 1"),
        ({"only": 5}, "options.only must be a list of shot ids"),
        ({"verify": "yes"}, "options.verify must be true or false"),
        (["only"], "options must be a mapping"),
    ],
)
def test_an_edited_plan_file_is_refused_before_anything_is_read_from_it(
    sim: RunningSim, batch: Batch, tmp_path: Path, options: Any, problem: str
) -> None:
    saved = tmp_path / "plan.json"
    made = run_cli("plan", str(batch.manifest), "--out", str(batch.out), "--save", str(saved))
    assert made.returncode == 0, made.stderr
    document = json.loads(saved.read_text(encoding="utf-8"))
    document["options"] = (
        {**document["options"], **options} if isinstance(options, dict) else (options)
    )
    saved.write_text(json.dumps(document), encoding="utf-8")
    command = ["run", str(batch.manifest), "--out", str(batch.out), "--api-base", sim.base_url]
    refused = run_cli(*command, "--poll-interval", POLL, "--plan", str(saved))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"not a plan file of this shotrunner ({problem})" in refused.stderr
    assert "Traceback" not in refused.stderr and sim.recorder.requests == []


@pytest.mark.parametrize("amount", ["lots", "-1", "nan"])
def test_max_cost_must_be_an_amount(batch: Batch, amount: str) -> None:
    result = run_cli("run", str(batch.manifest), "--simulate", "--max-cost", amount)
    assert result.returncode == 2
    assert "--max-cost" in result.stderr


def test_jobs_that_wait_for_other_shots_clips_are_priced_and_every_wave_is_counted(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """A chain of three: two jobs wait in the plan, yet each is priced, previewed as
    waiting, and the money of the later waves is in the run's figures."""
    from tests.e2e.test_chain import write_chain

    write_chain(batch)
    with_prices(batch)
    shown = run_cli("plan", str(batch.manifest), "--out", str(batch.out), "--show-requests").stdout
    assert "s02-walk/1: 0.40 USD (4 s omni-fast, waits for s01-wide)" in shown
    assert "s03-close/1: 0.40 USD (4 s omni-fast, waits for s02-walk)" in shown
    assert "total: 1.20 USD" in shown
    assert "s02-walk/1 (waits for s01-wide; its frames are taken once those clips" in shown
    money = plan_json(batch)["summary"]["money"]
    assert money["total"] == "1.20"
    assert money["waiting"] == {"s02-walk/1": "0.40", "s03-close/1": "0.40"}

    refused = run_batch(sim.base_url, "--max-cost", "1.00")
    assert refused.returncode == 2
    assert "the plan costs 1.20 USD, more than --max-cost 1.00 USD" in refused.stderr
    assert sim.recorder.requests == []

    result = run_batch(sim.base_url, "--max-cost", "1.20")
    assert result.returncode == 0, result.stdout + result.stderr
    assert sim.recorder.tasks_created == 3
    assert "money: committed this run 1.20 USD, delivered this run 1.20 USD" in result.stdout
    # Each wave's plan line says what it costs: the first one's is the whole chain's.
    plans = [line for line in result.stderr.splitlines() if line.startswith("plan: ")]
    assert [line.split("to submit (")[1].split("), ")[0] for line in plans] == [
        "12 s of video, 1.20 USD, worst case 3.60 USD",
        "4 s of video, 0.40 USD, worst case 1.20 USD",
        "4 s of video, 0.40 USD, worst case 1.20 USD",
    ]
    with batch.db() as conn:
        (summary,) = conn.execute("select summary from runs").fetchone()
    assert json.loads(summary)["money"]["committed"] == "1.20"
    assert json.loads(summary)["money"]["delivered"] == "1.20"


def test_a_provider_shots_preview_is_the_call_its_api_receives(
    start_sim: StartSim, tmp_path: Path
) -> None:
    """Veo: the profile's own body (instances, parameters) at its own path; the image's
    bytes shown as source and sha256 where the base64 goes."""
    from tests.e2e.test_providers import GEMINI, _veo_shots, run, write_manifest

    veo = start_sim(dialect="veo", token=GEMINI, seed=3)
    manifest = write_manifest(tmp_path, "veo", _veo_shots())
    out = manifest.parent / "out"
    planned = run_cli("plan", str(manifest), "--out", str(out), "--json")
    assert planned.returncode == 0, planned.stderr
    calls = {j["shot"]: j["call"] for j in json.loads(planned.stdout)["jobs"]}
    text = run_cli("plan", str(manifest), "--out", str(out), "--show-requests").stdout
    assert "base64," not in text
    assert "POST veo /v1beta/models/veo-3.1-generate-preview:predictLongRunning" in text

    assert run(manifest, veo.base_url).returncode == 0
    sent = {r.json["instances"][0]["prompt"]: r for r in veo.recorder.creates()}
    by_prompt = {"waves at dusk": "text", "the sun sets": "first", "a lighthouse": "refs"}
    assert set(sent) == set(by_prompt)
    for prompt, shot in by_prompt.items():
        call, create = calls[shot], sent[prompt]
        assert (call["method"], call["path"]) == (create.method, create.path)
        body = json.loads(json.dumps(create.json))
        instance = body["instances"][0]
        images = [instance.pop("image")] if "image" in instance else []
        images += [ref.pop("image") for ref in instance.get("referenceImages", [])]
        shown_instance = call["body"]["instances"][0]
        shown_images = [shown_instance.pop("image")] if "image" in shown_instance else []
        shown_images += [ref.pop("image") for ref in shown_instance.get("referenceImages", [])]
        assert body == call["body"]
        assert len(images) == len(shown_images)
        for image, preview in zip(images, shown_images, strict=True):
            assert image["mimeType"] == preview["mimeType"]
            data = base64.b64decode(image["bytesBase64Encoded"])
            assert hashlib.sha256(data).hexdigest() == preview["bytesBase64Encoded"]["sha256"]


def test_run_plan_refuses_a_changed_image_of_a_job_that_waits(
    sim: RunningSim, batch: Batch, tmp_path: Path
) -> None:
    """A waiting job has no fingerprint yet: the saved plan keeps its own images' sha256."""
    image = batch.manifest.parent / "end.png"
    image.write_bytes(tiny_png())
    batch.manifest.write_text(
        "version: 1\nname: e2e\ndefaults: {seconds: 4}\nshots:\n"
        "  - {id: s01, prompt: a wide beach}\n"
        "  - id: s02\n    prompt: she walks to the sea\n    mode: first_last\n"
        "    images: [{shot: s01, frame: last}, end.png]\n",
        encoding="utf-8",
    )
    saved = tmp_path / "plan.json"
    made = run_cli("plan", str(batch.manifest), "--out", str(batch.out), "--save", str(saved))
    assert made.returncode == 0, made.stderr
    (waiting,) = json.loads(saved.read_text(encoding="utf-8"))["waiting"]
    assert (waiting["shot"], waiting["waits_for"]) == ("s02", ["s01"])

    image.write_bytes(tiny_png(rgb=(10, 20, 30)))
    command = ["run", str(batch.manifest), "--out", str(batch.out), "--api-base", sim.base_url]
    refused = run_cli(*command, "--poll-interval", POLL, "--plan", str(saved))
    assert refused.returncode == 2
    assert "the plan changed since it was saved: s02/1: its images changed" in refused.stderr
    assert sim.recorder.requests == []

    made = run_cli("plan", str(batch.manifest), "--out", str(batch.out), "--save", str(saved))
    ran = run_cli(*command, "--poll-interval", POLL, "--plan", str(saved))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert sim.recorder.tasks_created == 2


def test_a_chained_jobs_preview_and_reason_name_the_source_clip(
    sim: RunningSim, batch: Batch, run_batch: RunBatch
) -> None:
    """Once its source is rendered again, a chained job's preview names the new clip (its
    frame's PNG is taken at send time), and its reason says which clip changed."""
    from tests.e2e.test_chain import write_chain

    write_chain(batch)
    assert run_batch(sim.base_url).returncode == 0
    write_chain(batch, first="a wide beach at dusk")
    assert run_batch(sim.base_url, "--only", "s01-wide").returncode == 0
    old_clip = json.loads((batch.out / "s02-walk/take-1.json").read_text(encoding="utf-8"))
    old_sha = old_clip["request"]["first_image_url"]["clip_sha256"]
    new_sha = hashlib.sha256((batch.out / "s01-wide/take-1.mp4").read_bytes()).hexdigest()
    assert old_sha != new_sha

    jobs = {j["shot"]: j for j in plan_json(batch)["jobs"]}
    walk = jobs["s02-walk"]
    assert walk["reason"] == (
        f"images changed: first_image_url s01-wide take 1, last frame (clip sha256:{old_sha[:8]})"
        f" → s01-wide take 1, last frame (clip sha256:{new_sha[:8]})"
    )
    preview = walk["request"]
    shown_image = preview.pop("first_image_url")
    assert shown_image["clip_sha256"] == new_sha
    assert shown_image["sha256"] is None  # taken from the clip when sent

    before = len(sim.recorder.creates())
    assert run_batch(sim.base_url, "--only", "s02-walk").returncode == 0
    (create,) = [
        c for c in sim.recorder.creates()[before:] if c.json["prompt"] == preview["prompt"]
    ]
    sent = dict(create.json)
    sent_image = sent.pop("first_image_url")
    assert sent == preview
    sidecar = json.loads((batch.out / "s02-walk/take-1.json").read_text(encoding="utf-8"))
    recorded = sidecar["request"]["first_image_url"]
    assert recorded["clip_sha256"] == new_sha
    png = base64.b64decode(sent_image.split(",", 1)[1])
    assert hashlib.sha256(png).hexdigest() == recorded["sha256"]


def test_run_plan_refuses_when_the_store_changed_since(
    sim: RunningSim, batch: Batch, tmp_path: Path
) -> None:
    saved = tmp_path / "plan.json"
    made = run_cli("plan", str(batch.manifest), "--out", str(batch.out), "--save", str(saved))
    assert made.returncode == 0, made.stderr
    command = ["run", str(batch.manifest), "--out", str(batch.out), "--api-base", sim.base_url]
    assert run_cli(*command, "--poll-interval", POLL, "--only", "s01").returncode == 0
    created = sim.recorder.tasks_created
    refused = run_cli(*command, "--poll-interval", POLL, "--plan", str(saved))
    assert refused.returncode == 2
    assert "s01/1: action submit → skip (the store changed)" in refused.stderr
    assert sim.recorder.tasks_created == created


def test_jobs_held_by_a_failed_source_are_priced_only_when_it_is_retried(
    start_sim: StartSim, batch: Batch, run_batch: RunBatch
) -> None:
    from tests.e2e.test_chain import write_chain

    write_chain(batch)
    failing = start_sim(fail_rate=1.0)
    assert run_batch(failing.base_url, "--max-attempts", "1", env=INSTANT).returncode == 1
    # Nothing to pay for without --retry-failed: --max-cost needs no prices to say so.
    unpriced = run_batch(failing.base_url, "--max-cost", "1", env=INSTANT)
    assert unpriced.returncode == 1, unpriced.stderr
    assert "--max-cost needs prices" not in unpriced.stderr
    # Their seconds too, in every summary: the plan's, its text's, and status's.
    summary = plan_json(batch)["summary"]
    assert (summary["tasks_to_submit"], summary["seconds_to_pay"]) == (0, 0)
    text = run_cli("plan", str(batch.manifest), "--out", str(batch.out)).stdout
    assert "0 task(s) to submit, 0 s of video to pay for" in text
    assert "(0 s counted in the seconds to pay; the 2 held by a failed shot are not" in text
    status = run_cli("status", str(batch.manifest), "--out", str(batch.out)).stdout
    assert "0 task(s) to submit, 0 s of video to pay for" in status
    assert plan_json(batch, "--retry-failed")["summary"]["seconds_to_pay"] == 12
    with_prices(batch)
    held = plan_json(batch)["summary"]["money"]
    assert (held["total"], held["waiting"]) == ("0.00", {})
    retried = plan_json(batch, "--retry-failed")["summary"]["money"]
    assert retried["total"] == "1.20"
    assert retried["waiting"] == {"s02-walk/1": "0.40", "s03-close/1": "0.40"}


def test_a_runway_shots_preview_is_the_call_its_api_receives(
    start_sim: StartSim, tmp_path: Path
) -> None:
    """Runway: its own paths and fields; each promptImage's data URI shown as source and
    sha256."""
    from tests.e2e.test_providers import RUNWAY, _runway_shots, run, write_manifest

    runway = start_sim(dialect="runway", token=RUNWAY)
    manifest = write_manifest(tmp_path, "runway", _runway_shots())
    out = manifest.parent / "out"
    planned = run_cli("plan", str(manifest), "--out", str(out), "--json")
    assert planned.returncode == 0, planned.stderr
    calls = {j["request"]["prompt"]: j["call"] for j in json.loads(planned.stdout)["jobs"]}

    assert run(manifest, runway.base_url).returncode == 0
    creates = runway.recorder.creates()
    assert len(creates) == len(calls) == 3
    for create in creates:
        body = json.loads(json.dumps(create.json))
        call = calls[body["promptText"]]
        assert (call["method"], call["path"]) == (create.method, create.path)
        sent_images = [image.pop("uri") for image in body.get("promptImage", [])]
        shown_images = [image.pop("uri") for image in call["body"].get("promptImage", [])]
        assert body == call["body"]
        assert len(sent_images) == len(shown_images)
        for uri, shown in zip(sent_images, shown_images, strict=True):
            data = base64.b64decode(uri.split(",", 1)[1])
            assert hashlib.sha256(data).hexdigest() == shown["sha256"]
