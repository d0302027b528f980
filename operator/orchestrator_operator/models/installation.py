"""The OrchestratorInstance resource: a Data Index, a Jobs Service, their persistence, the
Backstage plugin's configuration, and the defaults of the Workflows that link to it."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import Field, field_validator

from orchestrator_operator.models.common import (
    ApiModel,
    Condition,
    NamespaceName,
    ObjectName,
    ResourceRequirements,
    schema_extra,
)
from orchestrator_operator.models.source import GitSource, SourceStatus

KIND = "OrchestratorInstance"
PLURAL = "orchestratorinstances"
SINGULAR = "orchestratorinstance"
SHORT_NAMES = ["orch"]

# The longest fixed suffix of a child's name is "-data-index-service-props" (25 characters);
# with it the name still fits the 63 characters of a label value and of a Service name.
MAX_NAME_LENGTH = 38

# Stands for every namespace in workflowNamespaces.
ANY_NAMESPACE = "*"

_LIST_SET = {"x-kubernetes-list-type": "set"}
# A scheme, then an authority with user info before its '@'.
USER_INFO_PATTERN = "^[^:/?#]+://[^/?#]*@"
_NO_USER_INFO = (
    "must not hold a user name or password (user:password@host): the URL is shown in status,"
    " Events and the Workflows' properties"
)
_URL_RULES = [
    {
        "rule": "self.matches('^https?://[^/?#\\\\s]+(/[^?#\\\\s]*)?$')",
        "message": "must be an http:// or https:// URL without query or fragment",
    },
    {
        # The URL is written into the linked Workflows' properties, the status, Events and
        # logs: credentials in it would be shown to everyone who can read any of them.
        "rule": f"!self.matches('{USER_INFO_PATTERN}')",
        "message": _NO_USER_INFO,
    },
]


class PostgresService(ApiModel):
    """Where the PostgreSQL server answers."""

    name: Annotated[ObjectName, Field(description="Name of the PostgreSQL Service.")]
    namespace: Annotated[
        NamespaceName | None,
        Field(description="Namespace of the Service; the installation's own when omitted."),
    ] = None
    port: Annotated[int, Field(ge=1, le=65535)] = 5432
    database: Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9_$-]+$")] = (
        "sonataflow"
    )
    schema_: Annotated[
        str | None,
        Field(
            alias="schema",
            min_length=1,
            max_length=63,
            pattern=r"^[A-Za-z0-9_$-]+$",
            description="Database schema of this service; the name of its Service (such as"
            " <installation>-data-index-service) when omitted, so that the Data Index and the"
            " Jobs Service can share one database.",
        ),
    ] = None


class PostgresSecret(ApiModel):
    """The Secret, in the installation's namespace, that holds the database credentials.

    Its values reach the containers only as environment variables read from the Secret: they
    are never copied into a ConfigMap, an annotation or the status.
    """

    name: Annotated[ObjectName, Field(description="Name of the Secret.")]
    user_key: Annotated[str, Field(min_length=1, max_length=253)] = "POSTGRESQL_USER"
    password_key: Annotated[str, Field(min_length=1, max_length=253)] = "POSTGRESQL_PASSWORD"


class PostgresPersistence(ApiModel):
    service_ref: PostgresService
    secret_ref: PostgresSecret


class Persistence(ApiModel):
    """Where a service keeps its data. Without it, the ephemeral image keeps everything in
    memory and forgets it on restart."""

    postgresql: PostgresPersistence


class ServiceSettings(ApiModel):
    """What the Data Index and the Jobs Service have in common."""

    enabled: Annotated[
        bool, Field(description="Deploy this service as part of the installation.")
    ] = True
    image: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=512,
            description="Container image; the Apache KIE image of the operator's pinned"
            " version, ephemeral or PostgreSQL to match persistence, when omitted.",
        ),
    ] = None
    resources: Annotated[
        ResourceRequirements | None,
        Field(
            description="CPU and memory of the service's container; requests of 100m and 1Gi"
            " and limits of 200m and 1Gi, as a SonataFlow platform gives its services, when"
            " omitted."
        ),
    ] = None
    persistence: Annotated[
        Persistence | None,
        Field(description="PostgreSQL to keep the data in; in memory (ephemeral) when omitted."),
    ] = None
    external_url: Annotated[
        str | None,
        Field(
            max_length=2048,
            description="URL of a service of this kind that runs elsewhere, used instead of"
            " deploying one (set enabled to false). No user name or password in it: the URL is"
            " shown in status and Events.",
            **schema_extra(**{"x-kubernetes-validations": _URL_RULES}),
        ),
    ] = None

    @field_validator("external_url")
    @classmethod
    def _without_user_info(cls, url: str | None) -> str | None:
        # The API server refuses such a URL; this refuses one stored before that rule existed.
        if url is not None and re.match(USER_INFO_PATTERN, url):
            raise ValueError(_NO_USER_INFO)
        return url


_SERVICE_RULES = [
    {
        "rule": "!(self.enabled && has(self.externalUrl))",
        "message": "externalUrl names a service that runs elsewhere: set enabled to false to use"
        " it instead of deploying one",
    },
    {
        "rule": "!has(self.externalUrl) || (!has(self.persistence) && !has(self.image)"
        " && !has(self.resources))",
        "message": "persistence, image and resources shape a deployed service; they mean"
        " nothing with externalUrl",
    },
]


class DataIndexSettings(ServiceSettings):
    """The Data Index: the GraphQL store of workflow definitions and runs that the Backstage
    plugin reads."""

    replicas: Annotated[int, Field(ge=0, le=10)] = 1


class JobsServiceSettings(ServiceSettings):
    """The Jobs Service: timers for workflows that wait (sleep states, timeouts). It always runs
    as a single replica, because it schedules each job once."""


class BackstagePlugin(ApiModel):
    """The app-config snippet that points the Backstage Orchestrator plugin at the Data Index."""

    enabled: Annotated[bool, Field(description="Write the ConfigMap.")] = True
    config_map_name: Annotated[
        ObjectName | None,
        Field(
            description="Name of the ConfigMap, in the installation's namespace;"
            " <installation>-backstage when omitted."
        ),
    ] = None


class NetworkPolicies(ApiModel):
    """NetworkPolicies that admit only the expected clients to the Data Index and the Jobs
    Service: the installation's namespace, the workflows' namespaces, the operator's, and the
    namespaces below."""

    enabled: bool = False
    backstage_namespace: Annotated[
        NamespaceName | None,
        Field(description="Namespace of Backstage, whose plugin reads the Data Index."),
    ] = None
    extra_namespaces: Annotated[
        list[NamespaceName],
        Field(
            max_length=64,
            description="Other namespaces admitted to both services.",
            **schema_extra(**_LIST_SET),
        ),
    ] = []


class WorkflowDefaults(ApiModel):
    """What linked Workflows get when they do not say it themselves."""

    image: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=512,
            description="Image of dev-profile runtimes whose Workflow sets no spec.image.",
        ),
    ] = None
    properties: Annotated[
        str | None,
        Field(
            max_length=256 * 1024,
            description="application.properties lines that come before each linked Workflow's"
            " own spec.properties, so that a key the Workflow sets too takes the Workflow's"
            " value. Keys the operator manages keep the operator's value over both.",
        ),
    ] = None
    resources: Annotated[
        ResourceRequirements | None,
        Field(description="CPU and memory of runtimes whose Workflow sets no spec.resources."),
    ] = None


WorkflowNamespace = Annotated[
    str,
    Field(min_length=1, max_length=63, pattern=r"^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$"),
]


class InstallationSpec(ApiModel):
    """The services of one installation and what it offers the Workflows that link to it."""

    data_index: Annotated[
        DataIndexSettings,
        Field(
            default_factory=DataIndexSettings,
            **schema_extra(**{"x-kubernetes-validations": _SERVICE_RULES}),
        ),
    ]
    jobs_service: Annotated[
        JobsServiceSettings,
        Field(
            default_factory=JobsServiceSettings,
            **schema_extra(**{"x-kubernetes-validations": _SERVICE_RULES}),
        ),
    ]
    workflow_namespaces: Annotated[
        list[WorkflowNamespace],
        Field(
            max_length=256,
            description="Namespaces whose Workflows may link to this installation, besides its"
            " own; '*' admits every namespace.",
            **schema_extra(
                **_LIST_SET,
                **{
                    "x-kubernetes-validations": [
                        {
                            "rule": "!self.exists(n, n == '*') || self.size() == 1",
                            "message": "'*' already admits every namespace: list it alone",
                        }
                    ]
                },
            ),
        ),
    ] = []
    backstage: Annotated[
        BackstagePlugin,
        Field(default_factory=BackstagePlugin),
    ]
    network_policies: Annotated[
        NetworkPolicies,
        Field(default_factory=NetworkPolicies),
    ]
    workflow_defaults: Annotated[
        WorkflowDefaults | None,
        Field(description="Defaults of the Workflows that link to this installation."),
    ] = None
    sources: Annotated[
        list[GitSource],
        Field(
            max_length=32,
            description="Git repositories whose workflow folders become Workflows.",
            **schema_extra(
                **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}
            ),
        ),
    ] = []


class Endpoints(ApiModel):
    data_index: Annotated[
        str | None, Field(description="URL of the Data Index, as workflows reach it.")
    ] = None
    jobs_service: Annotated[
        str | None, Field(description="URL of the Jobs Service, as workflows reach it.")
    ] = None


class LinkedWorkflows(ApiModel):
    linked: int = 0
    ready: int = 0
    registered: Annotated[
        int, Field(description="Linked workflows whose definition the Data Index lists.")
    ] = 0
    summary: Annotated[str, Field(description="ready/linked, for the printer column.")] = "0/0"


class RunTotals(ApiModel):
    """Runs of every linked workflow by state, as the Data Index counts them."""

    pending: int = 0
    active: int = 0
    completed: int = 0
    aborted: int = 0
    suspended: int = 0
    error: int = 0
    stale: Annotated[
        bool,
        Field(
            description="True when the Data Index could not be asked at the last try, or the"
            " installation has none any more. The totals are then the last known."
        ),
    ] = False


class InstallationStatus(ApiModel):
    observed_generation: int | None = None
    conditions: Annotated[
        list[Condition],
        Field(
            **schema_extra(
                **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}
            )
        ),
    ] = []
    endpoints: Endpoints | None = None
    backstage_config_map: Annotated[
        str | None, Field(description="The ConfigMap holding the Backstage app-config snippet.")
    ] = None
    workflows: LinkedWorkflows | None = None
    runs: RunTotals | None = None
    runs_changed_at: Annotated[
        datetime | None,
        Field(
            description="When the run totals last changed: the latest runs.observedAt of the"
            " linked workflows."
        ),
    ] = None
    sources: list[SourceStatus] = []


class Installation(ApiModel):
    """An OrchestratorInstance as the operator reads it: the metadata it uses, and the spec."""

    name: str
    namespace: str
    uid: str
    generation: int
    spec: InstallationSpec

    def admits(self, namespace: str) -> bool:
        """Whether Workflows of this namespace may link to the installation."""
        allowed = self.spec.workflow_namespaces
        return namespace == self.namespace or ANY_NAMESPACE in allowed or namespace in allowed


CEL_RULES: list[dict[str, str]] = [
    {
        "rule": f"self.metadata.name.size() <= {MAX_NAME_LENGTH}",
        "message": f"metadata.name must be at most {MAX_NAME_LENGTH} characters, so that the"
        " names of the Services and ConfigMaps made from it fit 63 characters",
    },
    {
        "rule": "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
        "message": "metadata.name must start with a letter and hold only lower-case letters,"
        " digits and '-', because it names the installation's Services",
    },
]

SPEC_CEL_RULES: list[dict[str, str]] = [
    {
        "rule": "!has(self.networkPolicies) || !self.networkPolicies.enabled"
        " || has(self.networkPolicies.backstageNamespace)"
        " || (has(self.dataIndex) && !self.dataIndex.enabled)",
        "message": "with network policies on, set networkPolicies.backstageNamespace: the"
        " Backstage plugin must reach the Data Index",
    },
]
