"""Git sources: repositories whose workflow folders an installation mirrors into Workflows."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from orchestrator_operator.models.common import (
    ApiModel,
    Condition,
    NamespaceName,
    ObjectName,
    schema_extra,
)

# Changing the value of this annotation on an installation makes it sync its sources now.
SYNC_NOW_ANNOTATION = "orchestrator.dev/sync-now"

SOURCE_NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
DURATION_PATTERN = r"^([0-9]+(s|m|h))+$"
# A full SHA-1 commit id: git servers fetch no abbreviated id.
COMMIT_PATTERN = r"^[0-9a-f]{40}$"


class GitRef(ApiModel):
    """Which revision to mirror: one of a branch, a tag or a commit."""

    branch: Annotated[str | None, Field(min_length=1, max_length=255)] = None
    tag: Annotated[str | None, Field(min_length=1, max_length=255)] = None
    commit: Annotated[
        str | None,
        Field(
            pattern=COMMIT_PATTERN,
            # A bound on the length keeps the rule below within the API server's cost budget.
            max_length=64,
            description="A full 40-character commit id.",
            **schema_extra(
                **{
                    "x-kubernetes-validations": [
                        {
                            "rule": f"self.matches('{COMMIT_PATTERN}')",
                            "message": "a commit must be its full 40-character id: git servers"
                            " fetch no abbreviated id",
                        }
                    ]
                }
            ),
        ),
    ] = None


GIT_REF_RULES = [
    {
        "rule": "[has(self.branch), has(self.tag), has(self.commit)].filter(x, x).size() == 1",
        "message": "set exactly one of branch, tag and commit",
    },
    {
        "rule": "(!has(self.branch) || !self.branch.startsWith('-'))"
        " && (!has(self.tag) || !self.tag.startsWith('-'))",
        "message": "a branch or tag must not start with '-'",
    },
]


class GitCredentials(ApiModel):
    """A Secret in the installation's namespace holding the credentials of the repository.

    Keys: `token` (HTTPS; it wins over a password), or `username` and `password` (HTTPS), or
    `ssh-privatekey` together with `known_hosts` (SSH; host keys are always checked). One Secret
    may hold both kinds: the URL's transport picks the keys it uses.
    """

    secret_name: ObjectName


class GitSource(ApiModel):
    name: Annotated[
        str,
        Field(
            min_length=1,
            max_length=40,
            pattern=SOURCE_NAME_PATTERN,
            description="Name of the source, unique in the installation; labels its Workflows.",
        ),
    ]
    url: Annotated[
        str,
        Field(
            min_length=1,
            max_length=2048,
            description="Repository URL: https://, ssh:// or user@host:path. file:// only when"
            " the operator allows it (development and tests).",
            **schema_extra(
                **{
                    "x-kubernetes-validations": [
                        {
                            "rule": "!self.startsWith('-')",
                            "message": "the URL must not start with '-'",
                        },
                        {
                            "rule": "!self.contains('::')",
                            "message": "git transport helpers (such as ext::) are not allowed",
                        },
                        {
                            "rule": "!self.matches('^(?i)https://[^/?#]*@')",
                            "message": "an https URL must not hold a user, password or token"
                            " before '@': put the credentials in the Secret of credentials",
                        },
                    ]
                }
            ),
        ),
    ]
    ref: Annotated[
        GitRef | None,
        Field(
            description="Revision to mirror; the repository's default branch when omitted.",
            **schema_extra(**{"x-kubernetes-validations": GIT_REF_RULES}),
        ),
    ] = None
    path: Annotated[
        str,
        Field(
            max_length=512,
            description="Folder inside the repository that holds the workflow folders.",
            **schema_extra(
                **{
                    "x-kubernetes-validations": [
                        {
                            "rule": "!self.startsWith('/')"
                            " && !self.split('/').exists(s, s == '..')",
                            "message": "must be a relative path inside the repository",
                        }
                    ]
                }
            ),
        ),
    ] = ""
    credentials: GitCredentials | None = None
    poll_interval: Annotated[
        str,
        Field(pattern=DURATION_PATTERN, description="How often to fetch, such as 30s, 5m or 1h."),
    ] = "5m"
    target_namespace: Annotated[
        NamespaceName | None,
        Field(
            description="Namespace of the mirrored Workflows; the installation's own when"
            " omitted. It must be one the installation serves."
        ),
    ] = None
    max_size_bytes: Annotated[
        int,
        Field(
            ge=1024,
            le=1024**3,
            description="Largest checkout the operator accepts from this source.",
        ),
    ] = 50 * 1024 * 1024


class SourceStatus(ApiModel):
    name: str
    commit: str | None = None
    last_sync_time: datetime | None = None
    workflows: int = 0
    conditions: Annotated[
        list[Condition],
        Field(
            **schema_extra(
                **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}
            )
        ),
    ] = []
