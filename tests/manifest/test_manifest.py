"""The manifest's meaning: defaults, vars, modes, images, warnings, output folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import ManifestInvalid
from runner.jobs import expand_jobs, request_body
from runner.manifest import check_manifest, load_manifest, substitute
from tests.manifest.conftest import WriteManifest


def test_defaults_apply_to_shots_that_do_not_set_a_field(write_manifest: WriteManifest) -> None:
    """A field in defaults fills every shot that leaves it out; the shot's own value wins."""
    path = write_manifest(
        """
        version: 1
        defaults: {seconds: 6, resolution: 1080p, model: omni-fast}
        shots:
          - {id: a, prompt: p}
          - {id: b, prompt: q, seconds: 10}
        """
    )
    a, b = load_manifest(path).shots
    assert (a.seconds, a.resolution, b.seconds, b.resolution) == (6, "1080p", 10, "1080p")


def test_unset_fields_stay_unset(write_manifest: WriteManifest) -> None:
    """A field set neither on the shot nor in defaults is None (the service's default)."""
    shot = load_manifest(write_manifest("version: 1\nshots: [{id: a, prompt: p}]\n")).shots[0]
    assert (shot.seconds, shot.aspect_ratio, shot.resolution) == (None, None, None)
    assert shot.model == "omni-fast"


def test_extra_merges_over_defaults_extra_key_by_key(write_manifest: WriteManifest) -> None:
    """A shot's extra is merged shallowly over defaults.extra."""
    path = write_manifest(
        """
        version: 1
        defaults: {extra: {seed: 1, style: {a: 1}}}
        shots: [{id: a, prompt: p, extra: {style: {b: 2}}}]
        """
    )
    assert load_manifest(path).shots[0].extra == {"seed": 1, "style": {"b": 2}}


def test_extra_may_carry_video_fields_to_other_models(write_manifest: WriteManifest) -> None:
    """Only omni-fast refuses video fields in extra; another model gets them as written."""
    path = write_manifest(
        "version: 1\nshots: [{id: a, prompt: p, model: omni-pro, extra: {video_url: 'https://x.test/v'}}]\n"
    )
    assert load_manifest(path).shots[0].extra == {"video_url": "https://x.test/v"}


def test_unquoted_aspect_ratio_is_the_string(write_manifest: WriteManifest) -> None:
    """aspect_ratio: 16:9 unquoted is "16:9", not the sexagesimal 969."""
    path = write_manifest("version: 1\nshots: [{id: a, prompt: p, aspect_ratio: 16:9}]\n")
    assert load_manifest(path).shots[0].aspect_ratio == "16:9"


@pytest.mark.parametrize("written", ["08", "'08'", "8", "'8'"])
def test_seconds_accepts_ints_and_digit_strings(
    write_manifest: WriteManifest, written: str
) -> None:
    """seconds 08, "08", 8 and "8" all mean 8."""
    path = write_manifest(f"version: 1\nshots: [{{id: a, prompt: p, seconds: {written}}}]\n")
    assert load_manifest(path).shots[0].seconds == 8


def test_vars_replace_names_and_keep_other_dollars(write_manifest: WriteManifest) -> None:
    """${name} is replaced, $$ is one $, any other $ stays."""
    path = write_manifest(
        """
        version: 1
        vars: {hero: Ann, n: 5}
        shots: [{id: a, prompt: '${hero} pays $$${n} or $3 $x ${}'}]
        """
    )
    assert load_manifest(path).shots[0].prompt == "Ann pays $5 or $3 $x ${}"


def test_prompt_from_defaults_gets_vars(write_manifest: WriteManifest) -> None:
    """A prompt taken from defaults is substituted like a shot's own."""
    path = write_manifest(
        "version: 1\nvars: {x: sea}\ndefaults: {prompt: 'the ${x}'}\nshots: [{id: a}]\n"
    )
    assert load_manifest(path).shots[0].prompt == "the sea"


def test_unknown_var_in_defaults_is_reported_once(write_manifest: WriteManifest) -> None:
    """A problem in defaults shows once, not once per shot."""
    path = write_manifest(
        "version: 1\ndefaults: {prompt: '${x}'}\nshots: [{id: a}, {id: b}, {id: c}]\n"
    )
    _, diagnostics = check_manifest(path)
    assert [d.path for d in diagnostics] == ["defaults.prompt"]


def test_all_problems_of_a_file_are_reported_in_one_pass(write_manifest: WriteManifest) -> None:
    """Schema and meaning problems of different shots all come back together, in order."""
    path = write_manifest(
        """
        version: 1
        shots:
          - {id: a, prompt: p, resolution: 8k}
          - {id: b, prompt: '${nope}'}
          - {id: c, prompt: p, mode: first_frame}
          - {id: A, prompt: p, colour: red}
        """
    )
    with pytest.raises(ManifestInvalid) as caught:
        load_manifest(path)
    assert [d.path for d in caught.value.diagnostics] == [
        "shots[0].resolution",
        "shots[1].prompt",
        "shots[2].images",
        "shots[3].id",
        "shots[3].colour",
    ]


def test_unusual_values_are_warnings_not_errors(write_manifest: WriteManifest) -> None:
    """seconds outside 4..30 and an aspect ratio other than 16:9/9:16 warn but pass."""
    path = write_manifest(
        "version: 1\nshots: [{id: a, prompt: p, seconds: 45, aspect_ratio: '4:3'}]\n"
    )
    manifest = load_manifest(path)
    assert [(w.severity, w.path) for w in manifest.warnings] == [
        ("warning", "shots[0].seconds"),
        ("warning", "shots[0].aspect_ratio"),
    ]


def test_image_sources_resolve_to_refs(write_manifest: WriteManifest, workdir: Path) -> None:
    """A local file is hashed and typed by its bytes; a URL stays a URL."""
    path = write_manifest(
        """
        version: 1
        shots:
          - id: a
            prompt: p
            mode: reference
            images: [refs/surfer.webp, 'https://example.com/x.jpg']
        """
    )
    local, url = load_manifest(path).shots[0].images
    assert (local.kind, local.media_type, local.path) == (
        "file",
        "image/webp",
        workdir / "refs" / "surfer.webp",
    )
    assert local.sha256 is not None and len(local.sha256) == 64
    assert (url.kind, url.sha256) == ("url", None)


def test_image_with_a_misleading_name_is_recognised_by_bytes(
    write_manifest: WriteManifest, workdir: Path
) -> None:
    """A PNG named .jpg is accepted as the PNG it is."""
    (workdir / "really-png.jpg").write_bytes((workdir / "frames" / "s02.png").read_bytes())
    path = write_manifest(
        "version: 1\nshots: [{id: a, prompt: p, mode: first_frame, images: [really-png.jpg]}]\n"
    )
    assert load_manifest(path).shots[0].images[0].media_type == "image/png"


def test_image_over_the_size_cap_is_refused(write_manifest: WriteManifest, workdir: Path) -> None:
    """A file over 20 MiB is refused with its size, before it is read."""
    big = workdir / "big.png"
    with big.open("wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n")
        handle.truncate(21 * 1024 * 1024)
    path = write_manifest(
        "version: 1\nshots: [{id: a, prompt: p, mode: first_frame, images: [big.png]}]\n"
    )
    _, diagnostics = check_manifest(path)
    assert [d.message for d in diagnostics] == ["image big.png is 21.0 MiB; the limit is 20.0 MiB"]


def test_output_dir_defaults_to_renders_name_beside_the_manifest(
    write_manifest: WriteManifest, workdir: Path
) -> None:
    """Without output_dir the batch folder is renders/<name> next to the manifest."""
    (workdir / "sub").mkdir()
    path = write_manifest("version: 1\nshots: [{id: a, prompt: p}]\n", name="sub/spot.yaml")
    manifest = load_manifest(path)
    assert (manifest.name, manifest.output_dir) == ("spot", workdir / "sub" / "renders" / "spot")


def test_out_overrides_output_dir_relative_to_cwd(
    write_manifest: WriteManifest, workdir: Path
) -> None:
    """--out is relative to the working directory, not to the manifest."""
    (workdir / "sub").mkdir()
    path = write_manifest(
        "version: 1\noutput_dir: x\nshots: [{id: a, prompt: p}]\n", name="sub/m.yaml"
    )
    assert load_manifest(path).output_dir == workdir / "sub" / "x"
    assert load_manifest(path, out=Path("elsewhere")).output_dir == workdir / "elsewhere"


def test_display_path_is_as_given(write_manifest: WriteManifest) -> None:
    """Diagnostics and documents name the manifest as the user typed it."""
    write_manifest("version: 1\nshots: [{id: a, prompt: p}]\n")
    assert load_manifest("./m.yaml").display_path == "./m.yaml"


def test_substitute_leaves_text_without_vars_alone() -> None:
    """A prompt without $ is returned unchanged."""
    assert substitute("plain words", {}) == "plain words"


@pytest.mark.parametrize(
    "name", ["storyboard", "storyboard-csv", "text-takes", "first-frame", "first-last", "reference"]
)
def test_examples_are_valid(name: str) -> None:
    """Every example manifest validates without errors."""
    examples = Path(__file__).resolve().parents[2] / "examples" / "manifests"
    manifest, diagnostics = check_manifest(examples / f"{name}.yaml")
    assert manifest is not None, diagnostics


def test_whole_numbers_written_with_a_zero_fraction_are_accepted(
    write_manifest: WriteManifest,
) -> None:
    """seconds 8.0 and takes 2.0 are 8 and 2, the same request and jobs as 8 and 2."""
    floats = load_manifest(
        write_manifest("version: 1\nshots: [{id: a, prompt: p, seconds: 8.0, takes: 2.0}]\n")
    )
    ints = load_manifest(
        write_manifest("version: 1\nshots: [{id: a, prompt: p, seconds: 8, takes: 2}]\n", "i.yaml")
    )
    assert (floats.shots[0].seconds, floats.shots[0].takes) == (8, 2)
    assert [j.fingerprint for j in expand_jobs(floats)] == [
        j.fingerprint for j in expand_jobs(ints)
    ]
    assert request_body(floats.shots[0])["seconds"] == "8"
