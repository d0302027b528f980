"""Building blocks shared by the models of our custom resources."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

# A DNS-1123 subdomain, the shape of most object names (ConfigMaps, Secrets).
OBJECT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A DNS-1123 label, the shape of namespace names.
LABEL_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=OBJECT_NAME_PATTERN)]
NamespaceName = Annotated[str, Field(min_length=1, max_length=63, pattern=LABEL_NAME_PATTERN)]


def schema_extra(**extra: Any) -> dict[str, Any]:
    """Keywords that go into the generated OpenAPI schema as they are (x-kubernetes-*)."""
    return {"json_schema_extra": extra}


class ApiModel(BaseModel):
    """Base of every model that is part of our API: frozen, camelCase on the wire.

    Unknown fields are ignored rather than refused, because the API server already prunes
    what the schema does not declare, and an operator older than its CRD must still read it.
    """

    model_config = ConfigDict(
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        use_enum_values=True,
    )


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """A condition in the shape of metav1.Condition."""

    type: Annotated[str, Field(max_length=316)]
    status: ConditionStatus
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    last_transition_time: datetime
    reason: Annotated[str, Field(min_length=1, max_length=1024)]
    message: Annotated[str, Field(max_length=32768)] = ""


class LocalObjectReference(ApiModel):
    name: ObjectName


class ResourceRequirements(ApiModel):
    """CPU and memory for a container, as in corev1.ResourceRequirements."""

    limits: dict[str, str | int] | None = None
    requests: dict[str, str | int] | None = None
