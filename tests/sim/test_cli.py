"""``shotrunner sim``: the base URL first on stdout, a line per request, clean exit on signals."""

from __future__ import annotations

import signal
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from click.testing import CliRunner

from runner.cli import cli
from tests.plugins.sim_fixtures import StartSim

Launch = Callable[..., "subprocess.Popen[str]"]


@pytest.fixture
def launch() -> Iterator[Launch]:
    """Start ``shotrunner sim`` as a subprocess; any still running are killed at teardown."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "runner", "sim", "--port", "0", *args]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def _base_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    return process.stdout.readline().strip()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sim_prints_its_base_url_first_and_exits_0_on_a_signal(launch: Launch, signum: int) -> None:
    """The first stdout line is the base URL, which answers; Ctrl-C or SIGTERM exits 0."""
    process = launch("--quiet")
    base_url = _base_url(process)
    assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
    assert httpx.get(f"{base_url}/videos/video_x").status_code == 404
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_sim_prints_a_line_per_request_unless_quiet(launch: Launch) -> None:
    """Without --quiet each request gets a short line on stdout after the URL."""
    process = launch("--job-seconds", "0")
    base_url = _base_url(process)
    httpx.post(f"{base_url}/videos", json={"model": "omni-fast", "prompt": "p"})
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "api POST /v1/videos 200"
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=10)
    assert process.returncode == 0


def test_sim_passes_its_knobs_to_the_simulator(launch: Launch) -> None:
    """Options reach the simulator: --token makes a keyless request answer 401."""
    process = launch("--quiet", "--token", "sekrit", "--quirks")
    base_url = _base_url(process)
    assert httpx.get(f"{base_url}/videos/video_x").status_code == 401
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=10)


@pytest.mark.parametrize(
    "args",
    [
        ["--fail-rate", "1.5"],
        ["--error-rate", "-0.1"],
        ["--job-seconds", "-1"],
        ["--url-ttl", "0"],
        ["--max-active", "0"],
        ["--clip-bytes", "-5"],
        ["--file-rate", "0"],
        ["--stall-after", "-1"],
        ["--cut-after", "-1"],
        ["--deny-polls", "404"],
        ["--create-delay", "-1"],
        ["--port", "70000"],
        ["--fail-rate", "0.6", "--refuse-rate", "0.6"],
        ["--dialect", "openai"],
    ],
    ids=lambda args: " ".join(args),
)
def test_sim_refuses_bad_knob_values_with_exit_2(args: list[str]) -> None:
    """Out-of-range rates, durations, limits and ports exit 2 before serving."""
    result = CliRunner().invoke(cli, ["sim", *args])
    assert result.exit_code == 2, result.output
    assert "Error" in result.output
    # Click exits 2 for an option it does not know too: that would pass for the wrong reason.
    assert "No such option" not in result.output


def test_sim_passes_file_host_knobs_to_the_simulator(launch: Launch) -> None:
    """--stall-after reaches the file host: a body stops after that many bytes."""
    process = launch("--quiet", "--job-seconds", "0", "--stall-after", "100")
    base_url = _base_url(process)
    task = httpx.post(f"{base_url}/videos", json={"model": "omni-fast", "prompt": "p"}).json()
    url = httpx.get(f"{base_url}/videos/{task['id']}").json()["video_url"]
    received = b""
    with pytest.raises(httpx.ReadTimeout), httpx.stream("GET", url, timeout=0.5) as response:
        for chunk in response.iter_bytes():
            received += chunk
    assert len(received) == 100
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=10)
    assert process.returncode == 0


def test_sim_exits_2_when_the_port_is_taken(start_sim: StartSim) -> None:
    """A port already in use is a configuration error: a message and exit 2."""
    busy = httpx.URL(start_sim().base_url).port
    result = CliRunner().invoke(cli, ["sim", "--port", str(busy)])
    assert result.exit_code == 2
    assert "cannot listen" in result.output


def test_sim_keeps_serving_when_its_stdout_reader_goes_away(launch: Launch) -> None:
    """Like ``shotrunner sim | head -1``: once stdout's reader is gone, requests still answer."""
    process = launch("--job-seconds", "0")
    base_url = _base_url(process)
    assert process.stdout is not None
    process.stdout.close()
    statuses = [httpx.get(f"{base_url}/videos/video_x").status_code for _ in range(3)]
    assert statuses == [404, 404, 404]
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr


def test_sim_exits_2_when_the_state_file_cannot_be_opened(tmp_path: Path) -> None:
    """A --state path in a folder that does not exist is a configuration error, not a crash."""
    state = tmp_path / "missing" / "sim.db"
    result = CliRunner().invoke(cli, ["sim", "--port", "0", "--state", str(state)])
    assert result.exit_code == 2
    assert "cannot use the state file" in result.output


def test_sim_passes_deny_polls_to_the_simulator(launch: Launch) -> None:
    """--deny-polls 403 reaches the simulator: a create works, a retrieve answers 403."""
    process = launch("--quiet", "--deny-polls", "403")
    base_url = _base_url(process)
    task = httpx.post(f"{base_url}/videos", json={"model": "omni-fast", "prompt": "p"}).json()
    assert httpx.get(f"{base_url}/videos/{task['id']}").status_code == 403
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=10)
    assert process.returncode == 0


def test_sim_speaks_the_dialect_it_is_given(launch: Launch) -> None:
    """--dialect runway serves Runway's routes at the API's origin, with its key and headers;
    the request line names its path."""
    process = launch("--dialect", "runway", "--token", "sekrit", "--job-seconds", "0")
    base_url = _base_url(process)
    assert base_url.startswith("http://127.0.0.1:") and base_url.count("/") == 2
    headers = {"Authorization": "Bearer sekrit", "X-Runway-Version": "2024-11-06"}
    body = {"model": "gen4.5", "promptText": "p", "ratio": "1280:720", "duration": 5}
    created = httpx.post(f"{base_url}/v1/text_to_video", json=body, headers=headers)
    assert created.status_code == 200 and created.json()["estimatedCost"]["credits"] == 60
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "api POST /v1/text_to_video 200"
    task = httpx.get(f"{base_url}/v1/tasks/{created.json()['id']}", headers=headers)
    assert task.json()["status"] == "SUCCEEDED"
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=10)
    assert process.returncode == 0


def test_the_cli_names_every_dialect_of_the_simulator() -> None:
    """The CLI's list of dialects (kept without importing the simulator) is the simulator's."""
    from runner.cli.sim import DIALECT_NAMES
    from runner.sim.dialects import DIALECTS

    assert set(DIALECT_NAMES) == set(DIALECTS)


def test_sim_serves_tls_with_a_certificate_and_key(
    launch: Launch, tmp_path: Path, tls_ca: trustme.CA, client_tls: ssl.SSLContext
) -> None:
    """--tls-cert and --tls-key make both listeners https: the Veo dialect's base URL and
    its video URIs are https, as google-genai needs them."""
    cert = tls_ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(key_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    process = launch(
        "--quiet", "--dialect", "veo", "--job-seconds", "0",
        "--tls-cert", str(cert_file), "--tls-key", str(key_file),
    )  # fmt: skip
    base_url = _base_url(process)
    assert base_url.startswith("https://127.0.0.1:")
    with httpx.Client(base_url=base_url, verify=client_tls) as client:
        created = client.post(
            "/v1beta/models/veo-3.1-generate-preview:predictLongRunning",
            json={"instances": [{"prompt": "p"}]},
        )
        operation = client.get(f"/v1beta/{created.json()['name']}").json()
    uri = operation["response"]["generateVideoResponse"]["generatedSamples"][0]["video"]["uri"]
    assert uri.startswith(f"{base_url}/v1beta/files/")
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=10)
    assert process.returncode == 0


def test_sim_refuses_a_certificate_without_its_key(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not a certificate")
    result = CliRunner().invoke(cli, ["sim", "--tls-cert", str(cert)])
    assert result.exit_code == 2 and "--tls-cert and --tls-key go together" in result.output
    result = CliRunner().invoke(cli, ["sim", "--tls-cert", str(cert), "--tls-key", str(cert)])
    assert result.exit_code == 2 and "cannot use them" in result.output
