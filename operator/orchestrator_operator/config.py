"""Settings of the operator process, read once from the environment at startup.

Every variable starts with ORCHESTRATOR_OPERATOR_ so that the Helm chart can set them and a
developer can override them in a shell.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

PREFIX = "ORCHESTRATOR_OPERATOR_"


@dataclass(frozen=True)
class OperatorConfig:
    field_manager: str = "orchestrator-operator"
    dev_image: str = "docker.io/apache/incubator-kie-sonataflow-devmode:10.1.0"
    workers: int = 8
    resync_seconds: float = 600.0
    request_timeout_seconds: float = 30.0
    data_index_poll_seconds: float = 30.0
    # Base URL that replaces in-cluster service URLs for the operator's own HTTP calls, for an
    # operator running outside the cluster (development, the quick start).
    service_url_override: str | None = None
    # Git sources: file:// URLs read the operator's own file system, so they are refused
    # unless this is set (development and tests only).
    allow_file_sources: bool = False
    # PEM bundle of certificate authorities that HTTPS git servers are checked against, for
    # servers with a private CA; the system's bundle when unset.
    git_ca_file: str | None = None
    # Longest a single git command (ls-remote, fetch, checkout) may run before it is killed.
    git_timeout_seconds: float = 120.0
    # Git commands running at once, over all sources.
    git_concurrency: int = 4

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> OperatorConfig:
        environ = os.environ if environ is None else environ
        defaults = cls()

        def read(name: str, default: str | None) -> str | None:
            return environ.get(PREFIX + name, default)

        return cls(
            field_manager=read("FIELD_MANAGER", defaults.field_manager) or defaults.field_manager,
            dev_image=read("DEV_IMAGE", defaults.dev_image) or defaults.dev_image,
            workers=int(read("WORKERS", str(defaults.workers)) or defaults.workers),
            resync_seconds=float(
                read("RESYNC_SECONDS", str(defaults.resync_seconds)) or defaults.resync_seconds
            ),
            request_timeout_seconds=float(
                read("REQUEST_TIMEOUT_SECONDS", str(defaults.request_timeout_seconds))
                or defaults.request_timeout_seconds
            ),
            data_index_poll_seconds=float(
                read("DATA_INDEX_POLL_SECONDS", str(defaults.data_index_poll_seconds))
                or defaults.data_index_poll_seconds
            ),
            service_url_override=read("SERVICE_URL_OVERRIDE", None) or None,
            allow_file_sources=_flag(read("ALLOW_FILE_SOURCES", None)),
            git_ca_file=read("GIT_CA_FILE", None) or None,
            git_timeout_seconds=float(
                read("GIT_TIMEOUT_SECONDS", str(defaults.git_timeout_seconds))
                or defaults.git_timeout_seconds
            ),
            git_concurrency=int(
                read("GIT_CONCURRENCY", str(defaults.git_concurrency)) or defaults.git_concurrency
            ),
        )


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")
