"""Every bad input of issue 2: exit 2, a located message on stderr, no traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.manifest.conftest import CliResult, WriteManifest

# (name, manifest text, expected "LINE:COL", expected message fragment, expected path)
CASES = [
    ("broken_yaml", "version: 1\nshots: [a, b\n", "3:1", "invalid YAML: did not find expected", ""),
    (
        "wrong_version",
        "version: 2\nshots: [{id: a, prompt: p}]\n",
        "1:10",
        "unsupported manifest version 2",
        "version",
    ),
    ("missing_shots", "version: 1\n", "1:1", "missing required key 'shots'", ""),
    ("empty_shots", "version: 1\nshots: []\n", "2:8", "shots is empty", "shots"),
    (
        "missing_id",
        "version: 1\nshots:\n  - prompt: p\n",
        "3:5",
        "missing required key 'id' in a shot",
        "shots[0]",
    ),
    (
        "duplicate_ids",
        "version: 1\nshots:\n  - {id: a, prompt: p}\n  - {id: a, prompt: q}\n",
        "4:10",
        "duplicate shot id 'a' (first used at line 3)",
        "shots[1].id",
    ),
    (
        "ids_differing_by_case",
        "version: 1\nshots:\n  - {id: Shot1, prompt: p}\n  - {id: shot1, prompt: q}\n",
        "4:10",
        "differs only in case from 'Shot1'",
        "shots[1].id",
    ),
    (
        "id_with_slash",
        "version: 1\nshots:\n  - {id: ../escape/x, prompt: p}\n",
        "3:10",
        "may not contain a slash",
        "shots[0].id",
    ),
    (
        "id_with_leading_dot",
        "version: 1\nshots:\n  - {id: .hidden, prompt: p}\n",
        "3:10",
        "may not start with a dot",
        "shots[0].id",
    ),
    (
        "empty_prompt",
        "version: 1\nshots:\n  - {id: a, prompt: '  '}\n",
        "3:21",
        "the prompt is empty",
        "shots[0].prompt",
    ),
    (
        "missing_prompt",
        "version: 1\nshots:\n  - {id: a}\n",
        "3:5",
        "the shot has no prompt",
        "shots[0]",
    ),
    (
        "unknown_var",
        "version: 1\nvars: {hero: x}\nshots:\n  - {id: a, prompt: '${heor} runs'}\n",
        "4:21",
        "unknown var ${heor} in prompt; did you mean 'hero'?",
        "shots[0].prompt",
    ),
    (
        "first_frame_with_two_images",
        "version: 1\nshots:\n  - id: a\n    prompt: p\n    mode: first_frame\n"
        "    images: [frames/s02.png, frames/s02.png]\n",
        "6:13",
        "mode first_frame takes exactly 1 image, but 2 given",
        "shots[0].images",
    ),
    (
        "first_last_with_one_image",
        "version: 1\nshots:\n  - id: a\n    prompt: p\n    mode: first_last\n"
        "    images: [frames/s02.png]\n",
        "6:13",
        "mode first_last takes exactly 2 images",
        "shots[0].images",
    ),
    (
        "reference_without_images",
        "version: 1\nshots:\n  - {id: a, prompt: p, mode: reference}\n",
        "3:5",
        "mode reference takes 1 to 5 images, but 0 given",
        "shots[0]",
    ),
    (
        "text_with_images",
        "version: 1\nshots:\n  - {id: a, prompt: p, images: [frames/s02.png]}\n",
        "3:32",
        "the shot's mode is text, which takes no images",
        "shots[0].images",
    ),
    (
        "too_many_reference_images",
        "version: 1\nshots:\n  - id: a\n    prompt: p\n    mode: reference\n"
        "    images: [a.png, b.png, c.png, d.png, e.png, f.png]\n",
        "6:13",
        "6 images given; a shot takes at most 5",
        "shots[0].images",
    ),
    (
        "missing_image",
        "version: 1\nshots:\n  - id: a\n    prompt: p\n    mode: first_frame\n"
        "    images: [frames/nope.png]\n",
        "6:14",
        "image file not found: frames/nope.png",
        "shots[0].images[0]",
    ),
    (
        "directory_as_image",
        "version: 1\nshots:\n  - id: a\n    prompt: p\n    mode: first_frame\n"
        "    images: [frames]\n",
        "6:14",
        "image frames is a directory",
        "shots[0].images[0]",
    ),
    (
        "non_image_file",
        "version: 1\nshots:\n  - id: a\n    prompt: p\n    mode: first_frame\n"
        "    images: [fake.png]\n",
        "6:14",
        "fake.png is not a PNG, JPEG, WebP or GIF image",
        "shots[0].images[0]",
    ),
    (
        "bad_data_uri",
        "version: 1\nshots:\n  - id: a\n    prompt: p\n    mode: first_frame\n"
        "    images: ['data:image/png;base64,@@not-base64@@']\n",
        "6:14",
        "its payload is not valid base64",
        "shots[0].images[0]",
    ),
    (
        "data_uri_without_base64",
        "version: 1\nshots:\n  - id: a\n    prompt: p\n    mode: first_frame\n"
        "    images: ['data:text/plain,hello']\n",
        "6:14",
        "expected data:image/<type>;base64,<bytes>",
        "shots[0].images[0]",
    ),
    (
        "non_http_url",
        "version: 1\nshots:\n  - id: a\n    prompt: p\n    mode: first_frame\n"
        "    images: ['ftp://example.com/a.png']\n",
        "6:14",
        "ftp: URLs are not supported; use http(s)://",
        "shots[0].images[0]",
    ),
    (
        "seconds_as_words",
        "version: 1\nshots:\n  - {id: a, prompt: p, seconds: eight}\n",
        "3:33",
        "seconds must be a whole number of at least 1, not 'eight'",
        "shots[0].seconds",
    ),
    (
        "seconds_as_fraction",
        "version: 1\nshots:\n  - {id: a, prompt: p, seconds: 7.5}\n",
        "3:33",
        "seconds must be a whole number of at least 1, not 7.5",
        "shots[0].seconds",
    ),
    (
        "seconds_negative",
        "version: 1\nshots:\n  - {id: a, prompt: p, seconds: -3}\n",
        "3:33",
        "seconds must be a whole number of at least 1, not -3",
        "shots[0].seconds",
    ),
    (
        "unknown_resolution",
        "version: 1\nshots:\n  - {id: a, prompt: p, resolution: 1080}\n",
        "3:36",
        "resolution must be one of 720p, 1080p, 2k, 4k, not 1080",
        "shots[0].resolution",
    ),
    (
        "unknown_top_level_key",
        "version: 1\nshot:\n  - {id: a, prompt: p}\n",
        "2:1",
        "unknown key 'shot' at the top level; did you mean 'shots'?",
        "shot",
    ),
    (
        "unknown_shot_key",
        "version: 1\nshots:\n  - {id: a, promt: p}\n",
        "3:13",
        "unknown key 'promt' in a shot; did you mean 'prompt'?",
        "shots[0].promt",
    ),
    (
        "unknown_defaults_key",
        "version: 1\ndefaults: {secnds: 5}\nshots:\n  - {id: a, prompt: p}\n",
        "2:12",
        "unknown key 'secnds' in defaults; did you mean 'seconds'?",
        "defaults.secnds",
    ),
    (
        "takes_zero",
        "version: 1\nshots:\n  - {id: a, prompt: p, takes: 0}\n",
        "3:31",
        "takes must be a whole number from 1 to 20, not 0",
        "shots[0].takes",
    ),
    (
        "takes_over_twenty",
        "version: 1\nshots:\n  - {id: a, prompt: p, takes: 21}\n",
        "3:31",
        "takes must be a whole number from 1 to 20, not 21",
        "shots[0].takes",
    ),
    (
        "extra_overrides_prompt",
        "version: 1\nshots:\n  - id: a\n    prompt: p\n    extra:\n      prompt: sneaky\n",
        "6:7",
        "extra may not set 'prompt'",
        "shots[0].extra.prompt",
    ),
    (
        "extra_video_field_with_omni_fast",
        "version: 1\ndefaults:\n  extra: {video_url: 'https://x.test/v.mp4'}\n"
        "shots:\n  - {id: a, prompt: p}\n",
        "3:11",
        "extra may not set 'video_url' with model omni-fast",
        "defaults.extra.video_url",
    ),
    ("top_level_list", "- id: a\n  prompt: p\n", "1:1", "a manifest must be a mapping", ""),
    ("empty_file", "", "1:1", "the manifest is empty", ""),
    ("only_comments", "# nothing here\n", "1:1", "the manifest is empty", ""),
    (
        "object_tag",
        "version: 1\nshots:\n  - id: !!python/object/apply:os.system [echo hi]\n    prompt: p\n",
        "3:9",
        "YAML tag !!python/object/apply:os.system is not allowed",
        "shots[0].id",
    ),
    (
        "duplicate_key",
        "version: 1\nshots:\n  - id: a\n    prompt: p\n    prompt: q\n",
        "5:5",
        "key 'prompt' is written twice in this mapping (first at line 4)",
        "shots[0].prompt",
    ),
    (
        "alias_bomb",
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n"
            for i in range(6)
        ),
        "6:4",
        "aliases expand this document past 1,000,000 values",
        "",
    ),
]


@pytest.mark.parametrize(
    ("text", "where", "message", "path"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_input_exits_2_with_located_message(
    write_manifest: WriteManifest,
    run_cli: Callable[..., CliResult],
    workdir: Path,
    text: str,
    where: str,
    message: str,
    path: str,
) -> None:
    """The bad input is refused by validate with exit 2 and one message at its place."""
    (workdir / "fake.png").write_text("this is text, not a PNG\n")
    write_manifest(text)
    result = run_cli("validate", "m.yaml")
    assert result.exit_code == 2, result.stderr
    suffix = f" (at {path})" if path else ""
    expected = [
        line
        for line in result.stderr.splitlines()
        if line.startswith(f"m.yaml:{where}: error: ") and message in line and line.endswith(suffix)
    ]
    assert expected, result.stderr
    assert "Traceback" not in result.stderr


def test_binary_garbage_is_refused_with_a_location(
    workdir: Path, run_cli: Callable[..., CliResult]
) -> None:
    """A file of random bytes gives a located error, not a traceback."""
    (workdir / "m.yaml").write_bytes(b"version: 1\n\x00\x9f\x92\x96\xff\x00garbage")
    result = run_cli("validate", "m.yaml")
    assert result.exit_code == 2
    assert result.stderr.startswith("m.yaml:2:2: error: not UTF-8 text"), result.stderr


def test_control_characters_are_refused_with_a_location(
    workdir: Path, run_cli: Callable[..., CliResult]
) -> None:
    """Valid UTF-8 holding control characters is refused as not YAML text, at its place."""
    (workdir / "m.yaml").write_bytes(b"version: 1\nshots: \x01\x02\n")
    result = run_cli("validate", "m.yaml")
    assert result.exit_code == 2
    assert result.stderr.startswith("m.yaml:2:8: error: not a YAML text file"), result.stderr


def test_missing_manifest_file_exits_2(workdir: Path, run_cli: Callable[..., CliResult]) -> None:
    """A manifest path that does not exist is reported, exit 2."""
    result = run_cli("validate", "nope.yaml")
    assert result.exit_code == 2
    assert "nope.yaml:1:1: error: cannot read the manifest: no such file" in result.stderr


def test_plan_refuses_an_invalid_manifest_with_exit_2(
    write_manifest: WriteManifest, run_cli: Callable[..., CliResult]
) -> None:
    """plan prints the same diagnostics as validate and exits 2 without a plan."""
    write_manifest("version: 1\nshots:\n  - {id: a, prompt: p, takes: 99}\n")
    result = run_cli("plan", "m.yaml")
    assert result.exit_code == 2
    assert "m.yaml:3:31: error: takes must be a whole number from 1 to 20" in result.stderr
    assert result.stdout == ""
