"""What an OrchestratorInstance becomes: the Data Index and the Jobs Service (Deployment,
Service, properties ConfigMap each), the Backstage plugin's ConfigMap, and NetworkPolicies.

Pure functions of the installation and of the key names of the Secrets it reads. Database
credentials reach the containers only as `secretKeyRef` environment variables: no value of a
Secret is ever an input here, so none can end up in a manifest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2

from orchestrator_operator import API_GROUP, API_VERSION
from orchestrator_operator.models.installation import (
    ANY_NAMESPACE,
    KIND,
    Installation,
    PostgresPersistence,
    ServiceSettings,
)
from orchestrator_operator.render import names
from orchestrator_operator.render.properties import ServiceEndpoints, escape_key, escape_value
from orchestrator_operator.render.workflow import ConsumedSecret

HTTP_PORT = 8080
SERVICE_PORT = 80
KIE_VERSION = "10.1.0"

DATA_INDEX = "data-index"
JOBS_SERVICE = "jobs-service"
COMPONENTS = (DATA_INDEX, JOBS_SERVICE)
TITLES = {DATA_INDEX: "Data Index", JOBS_SERVICE: "Jobs Service"}

# Where the Apache KIE service images read an extra application.properties from.
CONFIG_DIR = "/home/kogito/config"
PROPERTIES_FILE = "application.properties"
BACKSTAGE_FILE = "app-config.orchestrator.yaml"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("orchestrator_operator", "templates"),
    autoescape=False,  # properties and YAML, not HTML  # noqa: S701
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)

_HEALTH_CHECK = "quarkus.smallrye-health.check"


@dataclass(frozen=True)
class ServiceImages:
    """The images of each service, pinned to one release, by persistence."""

    data_index_ephemeral: str = (
        f"docker.io/apache/incubator-kie-kogito-data-index-ephemeral:{KIE_VERSION}"
    )
    data_index_postgresql: str = (
        f"docker.io/apache/incubator-kie-kogito-data-index-postgresql:{KIE_VERSION}"
    )
    jobs_service_ephemeral: str = (
        f"docker.io/apache/incubator-kie-kogito-jobs-service-ephemeral:{KIE_VERSION}"
    )
    jobs_service_postgresql: str = (
        f"docker.io/apache/incubator-kie-kogito-jobs-service-postgresql:{KIE_VERSION}"
    )

    def of(self, component: str, postgresql: bool) -> str:
        if component == DATA_INDEX:
            return self.data_index_postgresql if postgresql else self.data_index_ephemeral
        return self.jobs_service_postgresql if postgresql else self.jobs_service_ephemeral


# What a SonataFlow platform gives its Data Index and Jobs Service, so that an installation
# moved from one sizes its services the same.
DEFAULT_RESOURCES: Mapping[str, Mapping[str, str]] = {
    "requests": {"cpu": "100m", "memory": "1Gi"},
    "limits": {"cpu": "200m", "memory": "1Gi"},
}


@dataclass(frozen=True)
class InstallationInput:
    installation: Installation
    # Secrets the persistence settings name, by name: key names and version only.
    secrets: Mapping[str, ConsumedSecret] = field(default_factory=dict)
    # Namespace the operator runs in, admitted to the Data Index when policies are on.
    operator_namespace: str | None = None
    images: ServiceImages = field(default_factory=ServiceImages)


@dataclass(frozen=True)
class RenderedInstallation:
    children: list[dict[str, Any]]
    endpoints: ServiceEndpoints
    backstage_config_map: str | None


def service_name(installation_name: str, component: str) -> str:
    """The Service and Deployment of a component, named as SonataFlow platforms name theirs."""
    suffix = "data-index-service" if component == DATA_INDEX else "jobs-service"
    return f"{installation_name}-{suffix}"


def backstage_config_map_name(installation: Installation) -> str:
    return installation.spec.backstage.config_map_name or f"{installation.name}-backstage"


def settings_of(installation: Installation, component: str) -> ServiceSettings:
    spec = installation.spec
    return spec.data_index if component == DATA_INDEX else spec.jobs_service


def deployed(installation: Installation, component: str) -> bool:
    return settings_of(installation, component).enabled


def endpoints(installation: Installation) -> ServiceEndpoints:
    """Where workflows reach each service: its own Service, or the external URL."""

    def url(component: str) -> str | None:
        settings = settings_of(installation, component)
        if settings.enabled:
            return f"http://{service_name(installation.name, component)}.{installation.namespace}"
        if settings.external_url:
            return settings.external_url.rstrip("/")
        return None

    return ServiceEndpoints(data_index_url=url(DATA_INDEX), jobs_service_url=url(JOBS_SERVICE))


def render_installation(given: InstallationInput) -> RenderedInstallation:
    """Every child: per deployed service its ConfigMap, Service and Deployment; then the
    Backstage ConfigMap and the NetworkPolicies."""
    installation = given.installation
    urls = endpoints(installation)

    children: list[dict[str, Any]] = []
    for component in COMPONENTS:
        if deployed(installation, component):
            children.extend(_service_children(given, component, urls))

    backstage = None
    if installation.spec.backstage.enabled and urls.data_index_url:
        backstage = backstage_config_map_name(installation)
        children.append(_backstage_config_map(installation, backstage, urls.data_index_url))

    if installation.spec.network_policies.enabled:
        children.extend(
            _network_policy(given, component)
            for component in COMPONENTS
            if deployed(installation, component)
        )
    return RenderedInstallation(children=children, endpoints=urls, backstage_config_map=backstage)


# -- one service -------------------------------------------------------------------------------


def _service_children(
    given: InstallationInput, component: str, urls: ServiceEndpoints
) -> list[dict[str, Any]]:
    config_map = _properties_config_map(given.installation, component, urls)
    return [
        config_map,
        _service(given.installation, component),
        _deployment(given, component, _checksum(given, component, config_map)),
    ]


def service_properties(
    installation: Installation, component: str, urls: ServiceEndpoints
) -> dict[str, str]:
    """The service's application.properties: only settings, never a credential."""
    name = service_name(installation.name, component)
    properties = {
        "kogito.service.url": f"http://{name}.{installation.namespace}",
        "quarkus.http.port": str(HTTP_PORT),
        "quarkus.http.host": "0.0.0.0",  # noqa: S104 - the container's port must be reachable
        "quarkus.devservices.enabled": "false",
        "quarkus.kogito.devservices.enabled": "false",
        # Neither service talks to Kafka here; its health check would hold readiness down.
        f'{_HEALTH_CHECK}."io.quarkus.kafka.client.health.KafkaHealthCheck".enabled': "false",
    }
    if component == JOBS_SERVICE:
        properties |= {
            # Events go over HTTP, not through a Knative sink that nobody injects.
            f'{_HEALTH_CHECK}."org.kie.kogito.jobs.service.messaging.http.health.knative'
            '.KSinkInjectionHealthCheck".enabled': "false",
            "kogito.jobs-service.management.leader-check.expiration-in-seconds": "60",
        }
        if urls.data_index_url:
            properties |= {
                "kogito.jobs-service.http.job-status-change-events": "true",
                "mp.messaging.outgoing.kogito-job-service-job-status-events-http.url": (
                    f"{urls.data_index_url}/jobs"
                ),
            }
        postgres = _postgres(installation, component)
        if postgres:
            properties["quarkus.datasource.reactive.url"] = (
                f"postgresql://{_database_address(installation, postgres)}"
                f"?search_path={_schema(installation, component, postgres)}"
            )
    return properties


def _properties_config_map(
    installation: Installation, component: str, urls: ServiceEndpoints
) -> dict[str, Any]:
    properties = service_properties(installation, component, urls)
    text = _TEMPLATES.get_template("service.properties.j2").render(
        component=TITLES[component],
        namespace=installation.namespace,
        name=installation.name,
        properties=[(escape_key(key), escape_value(value)) for key, value in properties.items()],
    )
    name = service_name(installation.name, component)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(installation, f"{name}-props", component),
        "data": {PROPERTIES_FILE: text},
    }


def _service(installation: Installation, component: str) -> dict[str, Any]:
    name = service_name(installation.name, component)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(installation, name, component),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(installation.name, component),
            "ports": [
                {"name": "http", "port": SERVICE_PORT, "targetPort": HTTP_PORT, "protocol": "TCP"}
            ],
        },
    }


def _deployment(given: InstallationInput, component: str, checksum: str) -> dict[str, Any]:
    installation = given.installation
    name = service_name(installation.name, component)
    settings = settings_of(installation, component)
    # The Jobs Service schedules each job once: a second replica, even during a rollout, would
    # compete for leadership, so it is replaced rather than rolled.
    replicas = installation.spec.data_index.replicas if component == DATA_INDEX else 1
    strategy = {"type": "RollingUpdate"} if component == DATA_INDEX else {"type": "Recreate"}
    labels = labels_of(installation.name, component)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(installation, name, component),
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 3,
            "strategy": strategy,
            "selector": {"matchLabels": selector(installation.name, component)},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {names.CHECKSUM_ANNOTATION: checksum},
                },
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [_container(given, component, settings)],
                    "volumes": [
                        {
                            "name": "config",
                            "configMap": {
                                "name": f"{name}-props",
                                "items": [{"key": PROPERTIES_FILE, "path": PROPERTIES_FILE}],
                            },
                        }
                    ],
                },
            },
        },
    }


def _container(
    given: InstallationInput, component: str, settings: ServiceSettings
) -> dict[str, Any]:
    postgres = _postgres(given.installation, component)
    resources = (
        settings.resources.model_dump(by_alias=True, exclude_none=True)
        if settings.resources
        else {kind: dict(values) for kind, values in DEFAULT_RESOURCES.items()}
    )
    return {
        "name": component,
        "image": settings.image or given.images.of(component, postgres is not None),
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}],
        "env": service_env(given.installation, component),
        "resources": resources,
        # Flyway migrates the schema before the service answers: allow it five minutes.
        "startupProbe": _probe("/q/health/live", period=10, failures=30),
        "livenessProbe": _probe("/q/health/live", period=15, failures=4),
        "readinessProbe": _probe("/q/health/ready", period=10, failures=3),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}],
    }


def service_env(installation: Installation, component: str) -> list[dict[str, Any]]:
    """Environment of a service's container; credentials only by reference to their Secret."""
    env: list[dict[str, Any]] = []
    if component == DATA_INDEX:
        # The profile in which the Data Index takes events over HTTP (POST /processes,
        # /definitions, /jobs) instead of from Kafka.
        env.append({"name": "KOGITO_DATA_INDEX_QUARKUS_PROFILE", "value": "http-events-support"})
    else:
        env.append({"name": "KOGITO_JOBS_SERVICE_LOADJOBERRORSTRATEGY", "value": "FAIL_SERVICE"})
    postgres = _postgres(installation, component)
    if postgres is None:
        return env
    secret = postgres.secret_ref
    env += [
        {"name": "QUARKUS_DATASOURCE_DB_KIND", "value": "postgresql"},
        {
            "name": "QUARKUS_DATASOURCE_USERNAME",
            "valueFrom": {"secretKeyRef": {"name": secret.name, "key": secret.user_key}},
        },
        {
            "name": "QUARKUS_DATASOURCE_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": secret.name, "key": secret.password_key}},
        },
        {
            "name": "QUARKUS_DATASOURCE_JDBC_URL",
            "value": f"jdbc:postgresql://{_database_address(installation, postgres)}"
            f"?currentSchema={_schema(installation, component, postgres)}",
        },
        {"name": "KOGITO_PERSISTENCE_TYPE", "value": "jdbc"},
        {"name": "QUARKUS_FLYWAY_MIGRATE_AT_START", "value": "true"},
    ]
    return env


def _postgres(installation: Installation, component: str) -> PostgresPersistence | None:
    persistence = settings_of(installation, component).persistence
    return persistence.postgresql if persistence else None


def _database_address(installation: Installation, postgres: PostgresPersistence) -> str:
    service = postgres.service_ref
    namespace = service.namespace or installation.namespace
    return f"{service.name}.{namespace}:{service.port}/{service.database}"


def _schema(installation: Installation, component: str, postgres: PostgresPersistence) -> str:
    return postgres.service_ref.schema_ or service_name(installation.name, component)


def _probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": HTTP_PORT, "scheme": "HTTP"},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def _checksum(given: InstallationInput, component: str, config_map: dict[str, Any]) -> str:
    """A digest of what the pod reads, so that a change to it rolls the service out.

    The Secret enters by its resourceVersion, never by its values: a digest of a short password
    written into an annotation could be reversed by guessing.
    """
    postgres = _postgres(given.installation, component)
    secret = given.secrets.get(postgres.secret_ref.name) if postgres else None
    consumed = {
        "properties": config_map["data"],
        "secret": secret.resource_version if secret else None,
    }
    canonical = json.dumps(consumed, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


# -- Backstage and network policies -------------------------------------------------------------


def backstage_app_config(installation: Installation, data_index_url: str) -> str:
    """The app-config snippet of the Backstage Orchestrator plugin."""
    return _TEMPLATES.get_template("backstage-app-config.yaml.j2").render(
        namespace=installation.namespace,
        name=installation.name,
        data_index_url=data_index_url,
    )


def _backstage_config_map(
    installation: Installation, name: str, data_index_url: str
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(installation, name, "backstage-config"),
        "data": {BACKSTAGE_FILE: backstage_app_config(installation, data_index_url)},
    }


def admitted_namespaces(given: InstallationInput, component: str) -> list[str] | None:
    """Namespaces whose pods may reach the component, or None for every namespace."""
    installation = given.installation
    spec = installation.spec
    if ANY_NAMESPACE in spec.workflow_namespaces:
        return None
    admitted = {installation.namespace, *spec.workflow_namespaces}
    admitted.update(spec.network_policies.extra_namespaces)
    if component == DATA_INDEX:
        # Backstage reads the Data Index; the operator asks it for the run figures.
        if spec.network_policies.backstage_namespace:
            admitted.add(spec.network_policies.backstage_namespace)
        if given.operator_namespace:
            admitted.add(given.operator_namespace)
    return sorted(admitted)


def _network_policy(given: InstallationInput, component: str) -> dict[str, Any]:
    installation = given.installation
    admitted = admitted_namespaces(given, component)
    peer: dict[str, Any] = (
        {"namespaceSelector": {}}
        if admitted is None
        else {
            "namespaceSelector": {
                "matchExpressions": [
                    {"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": admitted}
                ]
            }
        }
    )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(installation, service_name(installation.name, component), component),
        "spec": {
            "podSelector": {"matchLabels": selector(installation.name, component)},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [peer], "ports": [{"protocol": "TCP", "port": HTTP_PORT}]}],
        },
    }


# -- metadata ----------------------------------------------------------------------------------


def selector(installation_name: str, component: str) -> dict[str, str]:
    return {names.INSTALLATION_LABEL: installation_name, names.COMPONENT_LABEL: component}


def labels_of(installation_name: str, component: str) -> dict[str, str]:
    """Labels of every child; the installation label is what the operator's watches select.

    No `app.kubernetes.io/instance`: Argo CD tracks the objects of an Application by that label
    by default, and would take (and prune) the children of an installation named like an
    Application as its own.
    """
    return {
        names.INSTALLATION_LABEL: installation_name,
        "app.kubernetes.io/name": component,
        names.COMPONENT_LABEL: component,
        "app.kubernetes.io/part-of": "orchestrator",
        names.MANAGED_BY_LABEL: names.MANAGED_BY,
    }


def _metadata(installation: Installation, name: str, component: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": installation.namespace,
        "labels": labels_of(installation.name, component),
        "ownerReferences": [owner_reference(installation)],
    }


def owner_reference(installation: Installation) -> dict[str, Any]:
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": KIND,
        "name": installation.name,
        "uid": installation.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
