"""A real Kubernetes control plane on this machine, for tests and local development.

`LocalControlPlane` runs etcd, kube-apiserver, kube-controller-manager, and optionally
kube-scheduler with kwok (simulated nodes and pods), built from the Go module proxy by
`binaries.ensure_binaries`. `python -m orchestrator_operator.localcluster up` starts one.
"""

from orchestrator_operator.localcluster.audit import (
    READ_VERBS,
    WRITE_VERBS,
    AuditEvent,
    AuditLog,
    AuditMark,
)
from orchestrator_operator.localcluster.binaries import (
    KUBERNETES_VERSION,
    BinaryError,
    ensure_binaries,
)
from orchestrator_operator.localcluster.controlplane import (
    ADMIN_USER,
    ControlPlaneError,
    LocalControlPlane,
    Ports,
)

__all__ = [
    "ADMIN_USER",
    "KUBERNETES_VERSION",
    "READ_VERBS",
    "WRITE_VERBS",
    "AuditEvent",
    "AuditLog",
    "AuditMark",
    "BinaryError",
    "ControlPlaneError",
    "LocalControlPlane",
    "Ports",
    "ensure_binaries",
]
