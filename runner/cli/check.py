"""``validate`` and ``plan``: offline commands over manifests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from runner.cli.common import echo_err, handles_errors, out_option
from runner.errors import ExitCode


@click.command(name="validate")
@click.argument("manifests", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@handles_errors
def validate_cmd(manifests: tuple[str, ...], as_json: bool) -> None:
    """Check manifests against the schema and the rules of the manifest language.

    Problems go to stderr as FILE:LINE:COL: error: MESSAGE (at PATH); exit 2 if any file
    is invalid.
    """
    from runner.manifest import check_manifest

    files = []
    all_valid = True
    for path in manifests:
        manifest, diagnostics = check_manifest(path)
        for diagnostic in diagnostics:
            echo_err(diagnostic.format())
        valid = manifest is not None
        all_valid = all_valid and valid
        files.append(
            {
                "path": path,
                "valid": valid,
                "errors": [d.to_json() for d in diagnostics if d.severity == "error"],
                "warnings": [d.to_json() for d in diagnostics if d.severity == "warning"],
            }
        )
        if not as_json and manifest is not None:
            jobs = sum(shot.takes for shot in manifest.shots)
            click.echo(f"{path}: valid, {len(manifest.shots)} shot(s), {jobs} job(s)")
    if as_json:
        click.echo(json.dumps({"files": files}, indent=2))
    if not all_valid:
        sys.exit(int(ExitCode.BAD_INPUT))


@click.command(name="plan")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(path_type=str))
@out_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@handles_errors
def plan_cmd(manifest_path: str, out: Path | None, as_json: bool) -> None:
    """Show what ``run`` would do now for each job (offline)."""
    from runner.jobs import expand_jobs
    from runner.manifest import load_manifest
    from runner.plan import jobs_document, render_table
    from runner.reconcile import PlanOptions, reconcile

    manifest = load_manifest(manifest_path, out=out)
    for warning in manifest.warnings:
        echo_err(warning.format())
    # Read-only, and only when the batch has a state database: plan never creates one.
    store = None
    if (manifest.output_dir / "state.db").is_file():
        from runner.store import Store

        store = Store.open_existing(manifest.output_dir)
    try:
        planned = reconcile(expand_jobs(manifest), store, PlanOptions())
    finally:
        if store is not None:
            store.close()
    if as_json:
        click.echo(json.dumps(jobs_document(manifest, planned, with_action=True), indent=2))
    else:
        click.echo(render_table(manifest, planned, with_action=True))
