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
    ("missing_shots", "version: 1\n", "1:1", "missing required key 'shots'", "shots"),
    ("empty_shots", "version: 1\nshots: []\n", "2:8", "shots is empty", "shots"),
    (
        "missing_id",
        "version: 1\nshots:\n  - prompt: p\n",
        "3:5",
        "missing required key 'id' in a shot",
        "shots[0].id",
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
        "empty_id",
        "version: 1\nshots:\n  - {id: , prompt: p}\n",
        "3:10",
        "a shot id must not be empty",
        "shots[0].id",
    ),
    (
        "id_with_backslash",
        "version: 1\nshots:\n  - {id: 'a\\b', prompt: p}\n",
        "3:10",
        "may not contain a slash",
        "shots[0].id",
    ),
    (
        "id_ending_in_a_newline",
        'version: 1\nshots:\n  - {id: "a\\n", prompt: p}\n',
        "3:10",
        "shot id 'a\\n' must start with a letter or digit and hold only letters",
        "shots[0].id",
    ),
    (
        "id_too_long",
        "version: 1\nshots:\n  - id: " + "x" * 65 + "\n    prompt: p\n",
        "3:9",
        "is 65 characters long; the limit is 64",
        "shots[0].id",
    ),
    (
        "name_not_a_slug",
        "version: 1\nname: my batch\nshots:\n  - {id: a, prompt: p}\n",
        "2:7",
        "name must start with a letter or digit and hold only letters, digits, '.', '_' and '-' "
        "(at most 64 characters), not 'my batch'",
        "name",
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
        "shots[0].prompt",
    ),
    (
        "unknown_var",
        "version: 1\nvars: {hero: x}\nshots:\n  - {id: a, prompt: '${heor} runs'}\n",
        "4:21",
        "unknown var ${heor} in prompt; did you mean 'hero'?",
        "shots[0].prompt",
    ),
    (
        "var_name_not_a_name",
        "version: 1\nvars:\n  1b: x\nshots:\n  - {id: a, prompt: p}\n",
        "3:3",
        "var name '1b' must be letters, digits and '_', not starting with a digit",
        "vars.1b",
    ),
    (
        "var_value_a_list",
        "version: 1\nvars:\n  c: [y]\nshots:\n  - {id: a, prompt: p}\n",
        "3:6",
        "vars.c must be a string or a number, not a list",
        "vars.c",
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
        "shots[0].images",
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
        "data_uri_of_another_type",
        "version: 1\nshots:\n  - id: a\n    prompt: p\n    mode: first_frame\n"
        "    images: ['data:image/jpeg;base64,iVBORw0KGgoAAAAAAAAAAA==']\n",
        "6:14",
        "it says image/jpeg but its bytes are image/png",
        "shots[0].images[0]",
    ),
    (
        "data_uri_not_an_image",
        "version: 1\nshots:\n  - id: a\n    prompt: p\n    mode: first_frame\n"
        "    images: ['data:image/png;base64,aGVsbG8=']\n",
        "6:14",
        "its bytes are not a PNG, JPEG, WebP or GIF image",
        "shots[0].images[0]",
    ),
    (
        "url_without_host",
        "version: 1\nshots:\n  - id: a\n    prompt: p\n    mode: first_frame\n"
        "    images: ['https:///a.png']\n",
        "6:14",
        "image URL 'https:///a.png' is malformed: it needs a host",
        "shots[0].images[0]",
    ),
    (
        "empty_image",
        "version: 1\nshots:\n  - id: a\n    prompt: p\n    mode: first_frame\n    images: ['']\n",
        "6:14",
        "an image must not be empty",
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
        "image_path_with_a_nul",
        "version: 1\nshots:\n  - id: a\n    prompt: p\n    mode: first_frame\n"
        '    images: ["a\\0b.png"]\n',
        "6:14",
        "image 'a\\x00b.png' holds a NUL character, which no file name can",
        "shots[0].images[0]",
    ),
    (
        "image_name_longer_than_the_system_takes",
        "version: 1\nshots:\n  - id: a\n    prompt: p\n    mode: first_frame\n"
        f"    images: [{'n' * 300}.png]\n",
        "6:14",
        "cannot read image nnn",
        "shots[0].images[0]",
    ),
    (
        "seconds_as_words",
        "version: 1\nshots:\n  - {id: a, prompt: p, seconds: eight}\n",
        "3:33",
        "seconds must be a whole number from 1 to 99999, not 'eight'",
        "shots[0].seconds",
    ),
    (
        "seconds_as_fraction",
        "version: 1\nshots:\n  - {id: a, prompt: p, seconds: 7.5}\n",
        "3:33",
        "seconds must be a whole number from 1 to 99999, not 7.5",
        "shots[0].seconds",
    ),
    (
        "seconds_negative",
        "version: 1\nshots:\n  - {id: a, prompt: p, seconds: -3}\n",
        "3:33",
        "seconds must be a whole number from 1 to 99999, not -3",
        "shots[0].seconds",
    ),
    (
        "seconds_zero",
        "version: 1\nshots:\n  - {id: a, prompt: p, seconds: 0}\n",
        "3:33",
        "seconds must be a whole number from 1 to 99999, not 0",
        "shots[0].seconds",
    ),
    (
        "seconds_a_quoted_fraction",
        "version: 1\nshots:\n  - {id: a, prompt: p, seconds: '8.0'}\n",
        "3:33",
        "seconds must be a whole number from 1 to 99999, not '8.0'",
        "shots[0].seconds",
    ),
    (
        "seconds_past_the_limit",
        "version: 1\nshots:\n  - {id: a, prompt: p, seconds: 100000}\n",
        "3:33",
        "seconds must be a whole number from 1 to 99999, not 100000",
        "shots[0].seconds",
    ),
    (
        "seconds_of_more_digits_than_int_reads",
        "version: 1\nshots:\n  - {id: a, prompt: p, seconds: " + "9" * 5000 + "}\n",
        "3:33",
        "seconds must be a whole number from 1 to 99999, not '9999",
        "shots[0].seconds",
    ),
    (
        "aspect_ratio_not_w_h",
        "version: 1\nshots:\n  - {id: a, prompt: p, aspect_ratio: wide}\n",
        "3:38",
        "aspect_ratio must be W:H in whole numbers, like \"16:9\", not 'wide'",
        "shots[0].aspect_ratio",
    ),
    (
        "empty_model",
        "version: 1\nshots:\n  - {id: a, prompt: p, model: ''}\n",
        "3:31",
        "model must not be empty",
        "shots[0].model",
    ),
    (
        "empty_output_dir",
        "version: 1\noutput_dir: ''\nshots:\n  - {id: a, prompt: p}\n",
        "2:13",
        "output_dir must not be empty",
        "output_dir",
    ),
    (
        "extra_not_a_mapping",
        "version: 1\nshots:\n  - {id: a, prompt: p, extra: [seed]}\n",
        "3:31",
        "shots[0].extra must be a mapping, not a list",
        "shots[0].extra",
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
    (
        "extra_holding_infinity",
        "version: 1\nshots:\n  - id: a\n    prompt: p\n    extra: {guidance: [1, .inf]}\n",
        "5:27",
        "extra holds inf, which a JSON request cannot carry",
        "shots[0].extra.guidance[1]",
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
        "tagged_scalar_of_the_wrong_type",
        "version: 1\nshots:\n  - id: a\n    prompt: p\n    takes: !!int many\n",
        "5:12",
        "'many' is not a valid !!int",
        "shots[0].takes",
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
        "f",
    ),
    (
        "recursive_alias",
        "version: 1\nshots:\n  - &s {id: a, prompt: p, extra: {again: *s}}\n",
        "3:5",
        "an alias refers to a node that contains it (a recursive alias)",
        "shots[0]",
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
    suffix = f" (at {path or '<document>'})"
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
    assert result.stderr == (
        "nope.yaml:1:1: error: cannot read the manifest: no such file (at <document>)\n"
    )


def test_plan_refuses_an_invalid_manifest_with_exit_2(
    write_manifest: WriteManifest, run_cli: Callable[..., CliResult]
) -> None:
    """plan prints the same diagnostics as validate and exits 2 without a plan."""
    write_manifest("version: 1\nshots:\n  - {id: a, prompt: p, takes: 99}\n")
    result = run_cli("plan", "m.yaml")
    assert result.exit_code == 2
    assert "m.yaml:3:31: error: takes must be a whole number from 1 to 20" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            "version: 1\nshots:\n  - id: a\n    prompt: !!python/object/apply:os.system [ls]\n",
            id="object_tag_on_a_string_field",
        ),
        pytest.param("version: 1\nshots:\n  - !!set {a}\n", id="set_tag_on_a_shot"),
        pytest.param("version: 1\nshots:\n  - {id: !!binary aGk=, prompt: p}\n", id="binary_id"),
        pytest.param("!!python/object:x {version: 1}\n", id="object_tag_on_the_document"),
        pytest.param(
            "t: &t {prompt: !!python/name:os.system x}\nversion: 1\nshots:\n  - {id: a, <<: *t}\n",
            id="object_tag_merged_into_a_shot",
        ),
    ],
)
def test_a_refused_tag_is_the_only_error_at_its_place(
    write_manifest: WriteManifest, run_cli: Callable[..., CliResult], text: str
) -> None:
    """A refused YAML tag is not followed by a "must be a string, not empty" about its value."""
    write_manifest(text)
    result = run_cli("validate", "m.yaml")
    assert result.exit_code == 2
    tag_lines = [line for line in result.stderr.splitlines() if "is not allowed" in line]
    places = {line.rsplit(" (at ", 1)[-1] for line in tag_lines}
    others = [
        line
        for line in result.stderr.splitlines()
        if line not in tag_lines and line.rsplit(" (at ", 1)[-1] in places
    ]
    assert tag_lines and others == [], result.stderr
    assert "not empty" not in result.stderr and "must be a mapping" not in result.stderr


def test_a_missing_image_is_reported_with_a_wrong_image_count(
    write_manifest: WriteManifest, run_cli: Callable[..., CliResult]
) -> None:
    """Images of a text-mode shot are still resolved, so a missing file shows in the same pass."""
    write_manifest("version: 1\nshots:\n  - {id: a, prompt: p, images: [frames/nope.png]}\n")
    result = run_cli("validate", "m.yaml")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert [line.split(": error: ")[0] for line in lines] == ["m.yaml:3:32", "m.yaml:3:33"]
    assert lines[0].endswith(
        "the shot's mode is text, which takes no images; set mode: "
        "first_frame, first_last or reference (at shots[0].images)"
    )
    assert "image file not found: frames/nope.png" in lines[1]
    assert lines[1].endswith("(at shots[0].images[0])")


def test_a_missing_image_in_defaults_is_reported_once_at_defaults(
    write_manifest: WriteManifest, run_cli: Callable[..., CliResult]
) -> None:
    """An image set in defaults is checked once for all shots and located in defaults."""
    write_manifest(
        "version: 1\ndefaults:\n  mode: first_frame\n  images: [frames/nope.png]\n"
        "shots:\n  - {id: a, prompt: p}\n  - {id: b, prompt: q}\n"
    )
    result = run_cli("validate", "m.yaml")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"m.yaml:4:12: error: image file not found: frames/nope.png "
        f"(looked for {Path.cwd() / 'frames' / 'nope.png'}) (at defaults.images[0])"
    ]


def test_an_unknown_mode_still_resolves_its_images(
    write_manifest: WriteManifest, run_cli: Callable[..., CliResult]
) -> None:
    """With a misspelt mode, its images are checked but their count is not judged."""
    write_manifest(
        "version: 1\nshots:\n  - {id: a, prompt: p, mode: frist_frame, images: [nope.png, x.png]}\n"
    )
    result = run_cli("validate", "m.yaml")
    assert result.exit_code == 2
    assert [line.rsplit(" (at ", 1)[-1] for line in result.stderr.splitlines()] == [
        "shots[0].mode)",
        "shots[0].images[0])",
        "shots[0].images[1])",
    ]


@pytest.mark.parametrize(
    ("file_name", "problem"),
    [
        ("ev\x1b]0;owned\x07il\nTITLE: x.yaml", "holds a control character"),
        ("..yaml", "starts with a dot"),
    ],
)
def test_a_file_name_that_cannot_name_the_batch_asks_for_a_name(
    workdir: Path, run_cli: Callable[..., CliResult], file_name: str, problem: str
) -> None:
    """Without ``name:``, the file's stem names the batch folder and the cut's titles (an
    EDL's ``TITLE:`` line): a terminal escape or a line end there is refused, exit 2."""
    (workdir / file_name).write_text("version: 1\nshots:\n  - {id: a, prompt: p}\n")
    result = run_cli("validate", file_name)
    assert result.exit_code == 2, result.stdout
    assert f"{problem}, so it cannot name the batch; set name:" in result.stderr
    assert "\x1b" not in result.stderr + result.stdout
    (workdir / file_name).write_text("version: 1\nname: ok\nshots:\n  - {id: a, prompt: p}\n")
    named = run_cli("validate", file_name)
    assert named.exit_code == 0, named.stderr
    assert "\x1b" not in named.stdout and ": valid, 1 shot(s), 1 job(s)" in named.stdout
