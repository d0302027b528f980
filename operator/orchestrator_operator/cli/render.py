"""`orchestrator-operator render`: the objects a Workflow becomes, printed for review."""

from __future__ import annotations

import base64
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import ValidationError

from orchestrator_operator.models.workflow import KIND, Workflow, WorkflowSpec
from orchestrator_operator.reconcile.conditions import find
from orchestrator_operator.reconcile.source import PATH_NOT_FOUND
from orchestrator_operator.reconcile.workflow import (
    ConfigMapContent,
    Observed,
    consumed_names,
    plan_workflow,
)
from orchestrator_operator.render.mirror import MirrorTarget, render_discovery
from orchestrator_operator.render.repository import DiscoveryError, discover
from orchestrator_operator.render.workflow import ConsumedSecret


@click.command()
@click.option(
    "-f",
    "--filename",
    "files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML with Workflows, and the ConfigMaps and Secrets they name (repeatable).",
)
@click.option(
    "--repo",
    "repository",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A checked-out workflow repository: print the Workflows a git source of it would"
    " mirror, instead of rendering -f files.",
)
@click.option(
    "--path",
    "source_path",
    default="",
    help="With --repo: the folder of the repository that holds the workflow folders.",
)
@click.option("-n", "--namespace", default="default", show_default=True)
def render(
    files: tuple[Path, ...], repository: Path | None, source_path: str, namespace: str
) -> None:
    """Print the ConfigMaps, Service and Deployment each Workflow becomes, without a cluster.

    ConfigMaps and Secrets found in the same files stand for the cluster's; a Secret's values
    are never printed. Owner references are left out: the operator adds them in the cluster.

    With --repo, print instead the Workflows (and ConfigMaps of large files) that a git source
    of that repository becomes, and the problems found in it; the exit code is 1 when a folder
    would not be mirrored.
    """
    if repository is not None:
        if files:
            raise click.UsageError("give either -f files or --repo, not both")
        sys.exit(render_repository(repository, source_path, namespace))
    if not files:
        raise click.UsageError("give -f files, or --repo with a repository folder")
    documents = [doc for path in files for doc in yaml.safe_load_all(path.read_text()) if doc]
    config_maps: dict[str, ConfigMapContent] = {
        doc["metadata"]["name"]: {
            **(doc.get("data") or {}),
            **{k: base64.b64decode(v) for k, v in (doc.get("binaryData") or {}).items()},
        }
        for doc in documents
        if doc.get("kind") == "ConfigMap"
    }
    secrets = {
        doc["metadata"]["name"]: ConsumedSecret(
            name=doc["metadata"]["name"],
            keys=frozenset({**(doc.get("data") or {}), **(doc.get("stringData") or {})}),
            resource_version="rendered",
        )
        for doc in documents
        if doc.get("kind") == "Secret"
    }
    failed = False
    output: list[dict[str, Any]] = []
    for doc in documents:
        if doc.get("kind") != KIND:
            continue
        rendered, problem = _render_one(doc, namespace, config_maps, secrets)
        output.extend(rendered)
        if problem:
            failed = True
            click.echo(f"{doc['metadata'].get('name')}: {problem}", err=True)
    click.echo(yaml.safe_dump_all(output, sort_keys=False), nl=False)
    sys.exit(1 if failed else 0)


def _render_one(
    document: dict[str, Any],
    namespace: str,
    config_maps: dict[str, ConfigMapContent],
    secrets: dict[str, ConsumedSecret],
) -> tuple[list[dict[str, Any]], str | None]:
    metadata = document.get("metadata") or {}
    try:
        workflow = Workflow(
            name=metadata["name"],
            namespace=metadata.get("namespace", namespace),
            uid="",
            generation=1,
            spec=WorkflowSpec.model_validate(document.get("spec") or {}),
        )
    except (KeyError, ValidationError) as error:
        return [], f"InvalidSpec: {error}"
    config_map_names, secret_names = consumed_names(workflow)
    observed = Observed(
        config_maps={name: config_maps.get(name) for name in config_map_names},
        secrets={name: secrets.get(name) for name in secret_names},
    )
    plan = plan_workflow(workflow, observed, datetime.now(UTC))
    if plan.children is None:
        ready = find(plan.status["conditions"], "Ready") or {}
        return [], f"{ready.get('reason')}: {ready.get('message')}"
    for child in plan.children:
        child["metadata"].pop("ownerReferences", None)
    return plan.children, None


def render_repository(repository: Path, source_path: str, namespace: str) -> int:
    """Print what a repository's workflows become, problems to stderr; the exit code."""
    target = MirrorTarget(
        installation="orchestrator",
        installation_namespace=namespace,
        installation_uid="",
        source="local",
        namespace=namespace,
    )
    try:
        discovery = discover(repository, source_path)
    except DiscoveryError as error:
        click.echo(f"{PATH_NOT_FOUND}: {error}", err=True)
        return 1
    mirrored, problems = render_discovery(discovery, target)
    output: list[dict[str, Any]] = []
    for workflow in mirrored:
        for manifest in (*workflow.config_maps, workflow.workflow):
            manifest["metadata"].pop("ownerReferences", None)
            output.append(manifest)
    for problem in problems:
        level = "error" if problem.blocking else "warning"
        click.echo(f"{level}: {problem.reason}: {problem.message}", err=True)
    click.echo(yaml.safe_dump_all(output, sort_keys=False, width=100), nl=False)
    return 1 if any(problem.blocking for problem in problems) else 0
