"""What a Workflow becomes: ConfigMaps, a Deployment and a Service, as plain manifests.

Everything here is a pure function of the Workflow and of what it consumes (the ConfigMaps and
Secrets it names, the installation's endpoints), so the same input always gives the same
objects, byte for byte, and a resync that finds nothing new has nothing to write.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator_operator import API_GROUP, API_VERSION
from orchestrator_operator.models.workflow import KIND, Profile, Workflow
from orchestrator_operator.render import environment, names, properties
from orchestrator_operator.render.environment import (
    INSTALLATION_PROPERTIES,
    SPEC_PROPERTIES,
    EnvReference,
    ManagedOverride,
    env_references,
)
from orchestrator_operator.render.files import (
    CONFIG_MAP_BUDGET,
    FileTooLarge,
    config_map_key,
    data_size,
    pack_files,
)
from orchestrator_operator.render.properties import ServiceEndpoints

HTTP_PORT = 8080
SERVICE_PORT = 80
CONTAINER_NAME = "workflow"

# Where the dev-mode image compiles the project from, and where a built image reads its
# configuration (SonataFlow's own conventions).
DEV_RESOURCES_DIR = "/home/kogito/serverless-workflow-project/src/main/resources"
GITOPS_CONFIG_DIR = "/deployments/config"
USER_PROPERTIES_FILE = "application.properties"
MANAGED_PROPERTIES_FILE = {
    Profile.DEV: "application-dev.properties",
    Profile.GITOPS: "application-prod.properties",
}


@dataclass(frozen=True)
class RuntimeDefaults:
    """Settings of the operator that shape every runtime unless a Workflow says otherwise."""

    dev_image: str = "docker.io/apache/incubator-kie-sonataflow-devmode:10.1.0"
    dev_resources: Mapping[str, Mapping[str, str]] = field(
        default_factory=lambda: {
            "requests": {"cpu": "250m", "memory": "1Gi"},
            "limits": {"memory": "2Gi"},
        }
    )
    gitops_resources: Mapping[str, Mapping[str, str]] = field(
        default_factory=lambda: {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"memory": "512Mi"},
        }
    )


@dataclass(frozen=True)
class ConsumedConfigMap:
    """A ConfigMap of the user's that the Workflow mounts or reads env values from."""

    name: str
    # Every key, of data and of binaryData: each is a file when the ConfigMap is mounted.
    keys: tuple[str, ...]
    digest: str
    # Digests of the values of single keys that the pod reads as environment variables.
    key_digests: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ConsumedSecret:
    """A Secret the Workflow reads values from. Only its key names and version are kept."""

    name: str
    keys: frozenset[str]
    resource_version: str


@dataclass(frozen=True)
class RenderInput:
    workflow: Workflow
    workflow_id: str
    uses_timers: bool = False
    config_maps: Mapping[str, ConsumedConfigMap] = field(default_factory=dict)
    secrets: Mapping[str, ConsumedSecret] = field(default_factory=dict)
    endpoints: ServiceEndpoints | None = None
    defaults: RuntimeDefaults = field(default_factory=RuntimeDefaults)
    # Properties of the linked installation, which the Workflow's own come after.
    inherited_properties: str | None = None


@dataclass(frozen=True)
class _MountedConfigMap:
    manifest: dict[str, Any]
    # key -> path of the file under the mount
    paths: dict[str, str]


@dataclass(frozen=True)
class RenderedWorkflow:
    children: list[dict[str, Any]]
    checksum: str
    url: str


def service_url(workflow: Workflow) -> str:
    return f"http://{workflow.name}.{workflow.namespace}"


def managed_overrides(given: RenderInput) -> list[ManagedOverride]:
    """Every place where the user sets a managed key, properties or environment."""
    return environment.managed_overrides(
        given.workflow,
        given.inherited_properties,
        {name: secret.keys for name, secret in given.secrets.items()},
        _managed_properties(given),
    )


def definition_path(workflow_id: str) -> str:
    return f"{workflow_id}.sw.json"


def render_workflow(given: RenderInput) -> RenderedWorkflow | FileTooLarge:
    """Every child of the Workflow, ConfigMaps first and the Deployment last."""
    workflow = given.workflow
    profile = Profile(workflow.spec.profile)

    config_maps = _config_maps(given, profile)
    if isinstance(config_maps, FileTooLarge):
        return config_maps

    checksum = _checksum([mounted.manifest for mounted in config_maps], given)
    children = [
        *(mounted.manifest for mounted in config_maps),
        _service(workflow),
        _deployment(given, profile, config_maps, checksum),
    ]
    return RenderedWorkflow(children=children, checksum=checksum, url=service_url(workflow))


def _managed_properties(given: RenderInput) -> dict[str, str]:
    return properties.managed_properties(
        service_url(given.workflow), given.endpoints, given.uses_timers
    )


def _config_maps(given: RenderInput, profile: Profile) -> list[_MountedConfigMap] | FileTooLarge:
    workflow = given.workflow
    managed_file = MANAGED_PROPERTIES_FILE[profile]
    user_source = SPEC_PROPERTIES
    if given.inherited_properties:
        user_source = f"{SPEC_PROPERTIES} after {INSTALLATION_PROPERTIES}"
    files = [
        (
            "props",
            USER_PROPERTIES_FILE,
            properties.layered(given.inherited_properties, workflow.spec.properties),
            user_source,
        ),
        (
            "managed-props",
            managed_file,
            properties.render_managed_file(_managed_properties(given)),
            "the operator's managed properties",
        ),
    ]
    if profile is Profile.DEV:
        # A built image (gitops) carries its definition and resource files; dev mounts them.
        files.append(
            (
                "definition",
                definition_path(given.workflow_id),
                definition_text(workflow.spec.definition),
                "spec.definition, as JSON",
            )
        )
    config_maps: list[_MountedConfigMap] = []
    for suffix, path, content, source in files:
        key = config_map_key(path)
        size = data_size({key: content})
        if size > CONFIG_MAP_BUDGET:
            # Refused here, before anything is applied: the API server would refuse the
            # ConfigMap at every retry.
            return FileTooLarge(path, size, source)
        name = names.child_name(workflow.name, suffix)
        config_maps.append(_config_map(workflow, name, {key: (path, content)}))
    if profile is Profile.GITOPS:
        return config_maps

    packed = pack_files(workflow.name, {f.path: f.content for f in workflow.spec.files})
    if isinstance(packed, FileTooLarge):
        return packed
    config_maps.extend(
        _config_map(
            workflow,
            pack.name,
            {key: (pack.paths[key], content) for key, content in pack.data.items()},
        )
        for pack in packed
    )
    return config_maps


def definition_text(definition: Mapping[str, Any]) -> str:
    """The definition as the runtime reads it: indented for a person reading the ConfigMap,
    unless only the compact form fits in one."""
    indented = json.dumps(definition, indent=2, ensure_ascii=False)
    if len(indented.encode()) <= CONFIG_MAP_BUDGET:
        return indented
    return json.dumps(definition, separators=(",", ":"), ensure_ascii=False)


def _config_map(
    workflow: Workflow, name: str, files: dict[str, tuple[str, str]]
) -> _MountedConfigMap:
    """A ConfigMap of files given as key -> (path under the mount, content)."""
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(workflow, name),
        "data": {key: content for key, (_, content) in files.items()},
    }
    return _MountedConfigMap(manifest, {key: path for key, (path, _) in files.items()})


def _service(workflow: Workflow) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(workflow, workflow.name),
        "spec": {
            "type": "ClusterIP",
            "selector": names.workflow_selector(workflow.name),
            "ports": [
                {
                    "name": "http",
                    "port": SERVICE_PORT,
                    "targetPort": HTTP_PORT,
                    "protocol": "TCP",
                }
            ],
        },
    }


def _deployment(
    given: RenderInput,
    profile: Profile,
    config_maps: Sequence[_MountedConfigMap],
    checksum: str,
) -> dict[str, Any]:
    workflow = given.workflow
    pod_template = workflow.spec.pod_template
    pod_labels = {**(pod_template.labels or {} if pod_template else {})}
    pod_labels |= names.workflow_labels(workflow.name)
    pod_annotations = {**(pod_template.annotations or {} if pod_template else {})}
    pod_annotations[names.CHECKSUM_ANNOTATION] = checksum

    pod_spec: dict[str, Any] = {
        "securityContext": {
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(given, profile)],
        "volumes": [_projected_volume(given, profile, config_maps)],
    }
    if pod_template:
        pod_spec |= _pod_overrides(pod_template.model_dump(by_alias=True, exclude_none=True))

    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(workflow, workflow.name),
        "spec": {
            "replicas": workflow.spec.replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": names.workflow_selector(workflow.name)},
            "template": {
                "metadata": {"labels": pod_labels, "annotations": pod_annotations},
                "spec": pod_spec,
            },
        },
    }


def _pod_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    passed = ("nodeSelector", "tolerations", "affinity", "serviceAccountName", "imagePullSecrets")
    return {key: overrides[key] for key in passed if overrides.get(key)}


def _container(given: RenderInput, profile: Profile) -> dict[str, Any]:
    workflow = given.workflow
    spec = workflow.spec
    image = spec.image or given.defaults.dev_image
    default_resources = (
        given.defaults.dev_resources if profile is Profile.DEV else given.defaults.gitops_resources
    )
    resources = (
        spec.resources.model_dump(by_alias=True, exclude_none=True)
        if spec.resources
        else {kind: dict(values) for kind, values in default_resources.items()}
    )
    mount_path = DEV_RESOURCES_DIR if profile is Profile.DEV else GITOPS_CONFIG_DIR
    # Dev mode compiles the project before it answers, which takes minutes on a small node.
    startup_failures = 60 if profile is Profile.DEV else 30

    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}],
        "env": _env(given),
        "resources": resources,
        "startupProbe": _probe("/q/health/started", period=10, failures=startup_failures),
        "livenessProbe": _probe("/q/health/live", period=15, failures=3),
        "readinessProbe": _probe("/q/health/ready", period=10, failures=3),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": "workflow-files", "mountPath": mount_path, "readOnly": True}],
    }
    env_from = [
        {"secretRef": {"name": secret.secret_name}}
        for secret in spec.secrets
        if secret.keys is None
    ]
    if env_from:
        container["envFrom"] = env_from
    return container


def _env(given: RenderInput) -> list[dict[str, Any]]:
    return environment.container_env(
        given.workflow,
        {name: secret.keys for name, secret in given.secrets.items()},
        _managed_properties(given),
    )


def _probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": HTTP_PORT, "scheme": "HTTP"},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def _projected_volume(
    given: RenderInput, profile: Profile, config_maps: Sequence[_MountedConfigMap]
) -> dict[str, Any]:
    """One volume whose items put every file at its path under the mount."""
    sources: list[dict[str, Any]] = []
    for mounted in config_maps:
        items = [{"key": key, "path": mounted.paths[key]} for key in sorted(mounted.paths)]
        sources.append(
            {"configMap": {"name": mounted.manifest["metadata"]["name"], "items": items}}
        )
    if profile is Profile.DEV:
        for reference in given.workflow.spec.config_map_files:
            consumed = given.config_maps.get(reference.config_map)
            keys = consumed.keys if consumed else ()
            items = [
                {"key": key, "path": posixpath.join(reference.path, key)} for key in sorted(keys)
            ]
            sources.append({"configMap": {"name": reference.config_map, "items": items}})
    return {"name": "workflow-files", "projected": {"sources": sources}}


def _checksum(config_maps: Sequence[dict[str, Any]], given: RenderInput) -> str:
    """A digest of everything the pod reads, so that a change to any of it rolls out.

    Secrets enter by their resourceVersion, never by their values: a digest of a short secret
    written into an annotation could be reversed by guessing. A ConfigMap that env reads from
    enters by the values of the keys read only.
    """
    spec = given.workflow.spec
    env = env_references(given.workflow)
    secret_names = [secret.secret_name for secret in spec.secrets]
    secret_names += [ref.name for ref in env if ref.kind == "Secret"]
    consumed: dict[str, Any] = {
        "configMaps": {cm["metadata"]["name"]: cm["data"] for cm in config_maps},
        "userConfigMaps": {
            ref.config_map: given.config_maps[ref.config_map].digest
            if ref.config_map in given.config_maps
            else None
            for ref in spec.config_map_files
        },
        "secrets": {
            name: given.secrets[name].resource_version if name in given.secrets else None
            for name in secret_names
        },
    }
    env_values = {
        f"{ref.name}/{ref.key}": _key_digest(given, ref) for ref in env if ref.kind == "ConfigMap"
    }
    if env_values:
        # Only when there are any, so that the checksum of a Workflow without them stays the
        # one it always had.
        consumed["configMapKeys"] = env_values
    canonical = json.dumps(consumed, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _key_digest(given: RenderInput, ref: EnvReference) -> str | None:
    consumed = given.config_maps.get(ref.name)
    return consumed.key_digests.get(ref.key) if consumed else None


def _metadata(workflow: Workflow, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": workflow.namespace,
        "labels": names.workflow_labels(workflow.name),
        "ownerReferences": [owner_reference(workflow)],
    }


def owner_reference(workflow: Workflow) -> dict[str, Any]:
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": KIND,
        "name": workflow.name,
        "uid": workflow.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
