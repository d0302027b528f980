"""The Workflow resource: one Serverless Workflow definition and the runtime that serves it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field

from orchestrator_operator.models.common import (
    ApiModel,
    Condition,
    LocalObjectReference,
    NamespaceName,
    ObjectName,
    ResourceRequirements,
    schema_extra,
)

KIND = "Workflow"
PLURAL = "workflows"
SINGULAR = "workflow"
SHORT_NAMES = ["swf"]

# The longest fixed suffix of a child's name is "-managed-props" (14 characters); with it the
# name still fits the 63 characters of a label value and of a Service name.
MAX_NAME_LENGTH = 49

# What one resource file may hold. A ConfigMap holds at most 1 MiB including its metadata; the
# margin leaves room for keys, labels and owner references.
MAX_FILE_BYTES = 1_000_000

RELATIVE_PATH_RULE = {
    "rule": "!self.startsWith('/') && !self.split('/').exists(s, s == '..' || s == '.')",
    "message": "must be a relative path inside the resources folder: no leading '/', no '.' or"
    " '..' segments",
}


class Profile(StrEnum):
    """How the runtime is built and started."""

    DEV = "dev"
    GITOPS = "gitops"


class InlineFile(ApiModel):
    """A resource file written in the Workflow itself, such as a JSON schema."""

    path: Annotated[
        str,
        Field(
            min_length=1,
            max_length=512,
            description="Path of the file relative to the resources folder, for example"
            " schemas/input.json. The runtime resolves the definition's file references"
            " against this folder.",
            **schema_extra(**{"x-kubernetes-validations": [RELATIVE_PATH_RULE]}),
        ),
    ]
    content: Annotated[
        str,
        Field(max_length=MAX_FILE_BYTES, description="Content of the file, as text."),
    ]


class ConfigMapFiles(ApiModel):
    """Resource files kept in a ConfigMap of the Workflow's namespace: every key is one file,
    of data (text) or of binaryData."""

    config_map: Annotated[
        ObjectName, Field(description="Name of the ConfigMap, in the Workflow's namespace.")
    ]
    path: Annotated[
        str,
        Field(
            max_length=256,
            description="Folder, relative to the resources folder, where the ConfigMap's keys"
            " appear as files, for example specs or subflows/schemas. Empty for the resources"
            " folder itself.",
            **schema_extra(**{"x-kubernetes-validations": [RELATIVE_PATH_RULE]}),
        ),
    ] = ""


class SecretEnv(ApiModel):
    """Values the workflow reads from a Secret, as environment variables.

    This is what a secret.properties file lists: the keys of values that the properties refer to
    as ${KEY}, kept in a Secret instead of in the properties.
    """

    secret_name: Annotated[
        ObjectName, Field(description="Name of the Secret, in the Workflow's namespace.")
    ]
    keys: Annotated[
        list[
            Annotated[
                str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
            ]
        ]
        | None,
        Field(
            max_length=256,
            description="Keys of the Secret, each exposed as an environment variable of the same"
            " name. A key missing from the Secret is reported on the Workflow. When omitted, every"
            " key of the Secret is exposed.",
        ),
    ] = None


class Toleration(ApiModel):
    key: str | None = None
    operator: Annotated[str | None, Field(pattern=r"^(Exists|Equal)$")] = None
    value: str | None = None
    effect: Annotated[str | None, Field(pattern=r"^(NoSchedule|PreferNoSchedule|NoExecute)$")] = (
        None
    )
    toleration_seconds: int | None = None


class PodTemplate(ApiModel):
    """The usual adjustments of the runtime's pod."""

    env: Annotated[
        list[dict[str, Any]] | None,
        Field(
            max_length=256,
            description="Extra environment variables of the workflow container, as in a"
            " container's env list.",
            **schema_extra(
                items={
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string", "minLength": 1}},
                    "x-kubernetes-preserve-unknown-fields": True,
                }
            ),
        ),
    ] = None
    node_selector: dict[str, str] | None = None
    tolerations: list[Toleration] | None = None
    affinity: Annotated[
        dict[str, Any] | None,
        Field(
            description="Pod affinity rules, as in a pod spec.",
            **schema_extra(**{"x-kubernetes-preserve-unknown-fields": True}),
        ),
    ] = None
    service_account_name: ObjectName | None = None
    image_pull_secrets: list[LocalObjectReference] | None = None
    annotations: Annotated[
        dict[str, str] | None, Field(description="Annotations added to the runtime's pods.")
    ] = None
    labels: Annotated[
        dict[str, str] | None, Field(description="Labels added to the runtime's pods.")
    ] = None


class InstallationRef(ApiModel):
    """The OrchestratorInstance whose Data Index and Jobs Service this workflow uses."""

    name: ObjectName
    namespace: Annotated[
        NamespaceName | None,
        Field(description="Namespace of the installation; the Workflow's own when omitted."),
    ] = None


DEFINITION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The Serverless Workflow definition (specification 0.8, as SonataFlow runs"
    " it), written as YAML or JSON inside the resource. It is kept as written; its id, name and"
    " version are read from it.",
    "required": ["id", "states"],
    "properties": {
        "id": {
            "type": "string",
            "minLength": 1,
            # The runtime reads the definition from the file <id>.sw.json, at most 255 bytes.
            "maxLength": 247,
            "x-kubernetes-validations": [
                {
                    "rule": "!self.contains('/') && !self.startsWith('..')",
                    "message": "the id names the definition's file <id>.sw.json: no '/', and"
                    " not starting with '..'",
                }
            ],
        },
        "name": {"type": "string", "maxLength": 1024},
        "version": {"type": "string", "maxLength": 255},
        "description": {"type": "string"},
        "specVersion": {"type": "string", "maxLength": 32},
        "expressionLang": {"type": "string", "maxLength": 64},
        "states": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    },
    "x-kubernetes-preserve-unknown-fields": True,
}


class WorkflowSpec(ApiModel):
    """What the workflow is and how its runtime runs."""

    definition: Annotated[dict[str, Any], Field(**schema_extra(**DEFINITION_SCHEMA))]
    files: Annotated[
        list[InlineFile],
        Field(
            max_length=512,
            description="Resource files written inline: schemas, OpenAPI specs, sub-flows.",
            **schema_extra(
                **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["path"]}
            ),
        ),
    ] = []
    config_map_files: Annotated[
        list[ConfigMapFiles],
        Field(
            max_length=64,
            description="Resource files kept in ConfigMaps, for files too large or too many to"
            " write inline.",
        ),
    ] = []
    properties: Annotated[
        str | None,
        Field(
            max_length=MAX_FILE_BYTES,
            description="The runtime's application.properties, kept verbatim. Keys that the"
            " operator manages (such as quarkus.http.port) keep the operator's value. With the"
            " linked installation's workflowDefaults.properties before it, the file must fit"
            " one ConfigMap (1,000,000 bytes, not characters), or the Workflow reports"
            " FileTooLarge.",
        ),
    ] = None
    secrets: Annotated[
        list[SecretEnv],
        Field(max_length=32, description="Secrets whose keys become environment variables."),
    ] = []
    profile: Annotated[
        Profile,
        Field(
            description="dev: the SonataFlow dev-mode image, which compiles the mounted files"
            " at start, no image build. gitops: an image you built with the workflow inside;"
            " only the properties are mounted."
        ),
    ] = Profile.DEV
    image: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=512,
            description="Container image of the runtime. Required with the gitops profile.",
        ),
    ] = None
    replicas: Annotated[int, Field(ge=0, le=100)] = 1
    resources: Annotated[
        ResourceRequirements | None,
        Field(description="CPU and memory of the workflow container."),
    ] = None
    pod_template: PodTemplate | None = None
    installation_ref: Annotated[
        InstallationRef | None,
        Field(
            description="The installation whose Data Index and Jobs Service the workflow uses;"
            " without it the workflow runs standalone."
        ),
    ] = None


class ReplicaCounts(ApiModel):
    desired: int = 0
    updated: int = 0
    available: int = 0


class RunCounts(ApiModel):
    """Runs of a workflow by state, as the Data Index counts them."""

    pending: int = 0
    active: int = 0
    completed: int = 0
    aborted: int = 0
    suspended: int = 0
    error: int = 0


class LastRun(ApiModel):
    id: str
    state: str
    start: datetime | None = None
    end: datetime | None = None


class WorkflowRuns(ApiModel):
    """What the Data Index knows of this workflow."""

    registered: bool = False
    counts: RunCounts | None = None
    last_run: LastRun | None = None
    observed_at: Annotated[
        datetime | None,
        Field(
            description="When these figures last changed: a poll that finds the same figures"
            " leaves it (and the status) as it is, an operator restart included."
        ),
    ] = None
    stale: Annotated[
        bool,
        Field(
            description="True when nothing confirmed the figures at the last try: the Data"
            " Index could not be asked, the installation has none any more, or the link to it"
            " is refused. The figures are then the last known."
        ),
    ] = False


class ManagedKeyOverride(ApiModel):
    """A key the operator manages that the user sets too; the managed value is used."""

    key: Annotated[
        str, Field(description="The property, or the environment variable that would set one.")
    ]
    source: Annotated[
        str,
        Field(
            description="Where it is set: spec.properties, spec.podTemplate.env, a Secret of"
            " spec.secrets, or the installation's workflowDefaults.properties."
        ),
    ]


class WorkflowStatus(ApiModel):
    observed_generation: int | None = None
    conditions: Annotated[
        list[Condition],
        Field(
            **schema_extra(
                **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}
            )
        ),
    ] = []
    workflow_id: str | None = None
    workflow_name: str | None = None
    workflow_version: str | None = None
    profile: str | None = None
    url: Annotated[str | None, Field(description="In-cluster URL of the runtime.")] = None
    replicas: ReplicaCounts | None = None
    runs: WorkflowRuns | None = None
    overridden_managed_keys: Annotated[
        list[ManagedKeyOverride] | None,
        Field(
            description="Managed keys that the user also sets, which keep the operator's value."
            " A Warning Event (ManagedPropertyOverridden) names each one when it appears here."
        ),
    ] = None


class Workflow(ApiModel):
    """A Workflow as the operator reads it: the parts of metadata it uses, and the spec."""

    name: str
    namespace: str
    uid: str
    generation: int
    labels: dict[str, str] = {}
    spec: WorkflowSpec


CEL_RULES: list[dict[str, str]] = [
    {
        "rule": f"self.metadata.name.size() <= {MAX_NAME_LENGTH}",
        "message": f"metadata.name must be at most {MAX_NAME_LENGTH} characters, so that the"
        " names of the ConfigMaps, Deployment and Service made from it fit 63 characters",
    },
    {
        "rule": "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
        "message": "metadata.name must start with a letter and hold only lower-case letters,"
        " digits and '-', because it names the runtime's Service",
    },
]

SPEC_CEL_RULES: list[dict[str, str]] = [
    {
        "rule": "self.profile != 'gitops' || has(self.image)",
        "message": "the gitops profile runs an image you built: set spec.image",
    },
]
