"""`orchestrator-operator validate`: check workflows on disk as the operator would, without a
cluster."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator_operator.definition import (
    DefinitionError,
    WorkflowFolder,
    load_definition_file,
    load_workflow_folder,
    read_info,
    validate_definition,
)


@click.command("validate")
@click.argument(
    "paths",
    metavar="PATH...",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, path_type=Path),
)
def validate(paths: tuple[Path, ...]) -> None:
    """Check workflow folders and definition files before they roll out.

    PATH is a workflow folder (one *.sw.yaml, *.sw.yml or *.sw.json at its top, or in its
    src/main/resources) or a lone definition file, which is checked without resource files.
    Prints "PATH: ok (id ..., version ...)", or one "PATH: Reason: message" line per
    problem, with the reasons and messages the operator puts on a Workflow's condition.
    Exits with status 1 when any PATH has a problem.
    """
    failed = False
    for path in paths:
        lines, ok = check_path(path)
        for line in lines:
            click.echo(line)
        failed = failed or not ok
    if failed:
        raise click.exceptions.Exit(1)


def check_path(path: Path) -> tuple[list[str], bool]:
    """The lines to print for one PATH, and whether it passed."""
    try:
        workflow = load_workflow_folder(path) if path.is_dir() else load_definition_file(path)
    except DefinitionError as error:
        return [f"{path}: {error.problem.reason}: {error.problem.message}"], False
    return _report(path, workflow)


def _report(path: Path, workflow: WorkflowFolder) -> tuple[list[str], bool]:
    problems = validate_definition(workflow.definition, workflow.files)
    if problems:
        return [f"{path}: {problem.reason}: {problem.message}" for problem in problems], False
    info = read_info(workflow.definition)
    version = f"version {info.version}" if info.version else "no version"
    return [f"{path}: ok (id {info.id}, {version})"], True
