"""The workflow container's environment: the variables it gets, the Secrets and ConfigMaps they
are read from, and the ones that would set a managed key.

Quarkus reads every property from the environment too, and an environment variable wins over
every properties file; so a managed key is kept out of the environment as well as out of the
user's properties.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator_operator.models.workflow import Workflow
from orchestrator_operator.render import properties

INSTALLATION_PROPERTIES = "the installation's spec.workflowDefaults.properties"
SPEC_PROPERTIES = "spec.properties"
SPEC_POD_ENV = "spec.podTemplate.env"

# Secret name -> the names of its keys, as the cluster holds them.
SecretKeys = Mapping[str, Collection[str]]


@dataclass(frozen=True)
class EnvReference:
    """One value of a Secret or ConfigMap that spec.podTemplate.env reads into a variable."""

    kind: str  # Secret or ConfigMap
    name: str
    key: str
    variable: str
    optional: bool


@dataclass(frozen=True)
class ManagedOverride:
    """A user's attempt to set a managed key, which keeps the managed value."""

    key: str
    source: str


def env_references(workflow: Workflow) -> list[EnvReference]:
    """The Secret and ConfigMap keys that spec.podTemplate.env reads, in the order written."""
    found: list[EnvReference] = []
    for entry in _pod_env(workflow):
        value_from = entry.get("valueFrom")
        if not isinstance(value_from, Mapping):
            continue
        for field_name, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
            ref = value_from.get(field_name)
            if isinstance(ref, Mapping) and ref.get("name") and ref.get("key"):
                found.append(
                    EnvReference(
                        kind=kind,
                        name=str(ref["name"]),
                        key=str(ref["key"]),
                        variable=str(entry.get("name")),
                        optional=bool(ref.get("optional")),
                    )
                )
    return found


def managed_overrides(
    workflow: Workflow,
    inherited_properties: str | None,
    secret_keys: SecretKeys,
    managed: Mapping[str, str],
) -> list[ManagedOverride]:
    """Every place where the user sets a managed key, in the order the runtime reads them."""
    spec = workflow.spec
    found = [
        ManagedOverride(key, INSTALLATION_PROPERTIES)
        for key in properties.overridden_keys(inherited_properties, managed)
    ]
    found += [
        ManagedOverride(key, SPEC_PROPERTIES)
        for key in properties.overridden_keys(spec.properties, managed)
    ]
    found += [
        ManagedOverride(str(entry.get("name")), SPEC_POD_ENV)
        for entry in _pod_env(workflow)
        if properties.managed_env_key(str(entry.get("name")), managed)
    ]
    for secret in spec.secrets:
        # Listed keys as written; a whole Secret's keys as the cluster holds them.
        if secret.keys is not None:
            keys = list(secret.keys)
        else:
            keys = sorted(secret_keys.get(secret.secret_name, ()))
        source = f"Secret {secret.secret_name!r} (spec.secrets)"
        found += [
            ManagedOverride(key, source) for key in keys if properties.managed_env_key(key, managed)
        ]
    return list(dict.fromkeys(found))


def container_env(
    workflow: Workflow, secret_keys: SecretKeys, managed: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The container's variables, without those that would set a managed key."""
    spec = workflow.spec

    def unmanaged(name: str) -> bool:
        return properties.managed_env_key(name, managed) is None

    env: list[dict[str, Any]] = [
        {
            "name": key,
            "valueFrom": {"secretKeyRef": {"name": secret.secret_name, "key": key}},
        }
        for secret in spec.secrets
        for key in secret.keys or ()
        if unmanaged(key)
    ]
    env.extend(entry for entry in _pod_env(workflow) if unmanaged(str(entry.get("name"))))

    # A whole Secret (envFrom) cannot leave a key out, but a variable of the container's own
    # env wins over envFrom: one holding the managed value keeps it.
    shadowed: dict[str, str] = {}
    for secret in spec.secrets:
        if secret.keys is not None:
            continue
        for key in sorted(secret_keys.get(secret.secret_name, ())):
            managed_key = properties.managed_env_key(key, managed)
            if managed_key is not None:
                shadowed.setdefault(key, managed[managed_key])
    env.extend({"name": name, "value": value} for name, value in sorted(shadowed.items()))
    return env


def _pod_env(workflow: Workflow) -> list[dict[str, Any]]:
    pod_template = workflow.spec.pod_template
    return list(pod_template.env or []) if pod_template else []
