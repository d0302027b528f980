"""Kubeconfig files with embedded client-certificate credentials."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml

from orchestrator_operator.localcluster.certs import KeyPair

CLUSTER_NAME = "orchestrator-local"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def render(server: str, ca_pem: bytes, user: str, credentials: KeyPair) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CLUSTER_NAME,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(credentials.cert_pem),
                    "client-key-data": _b64(credentials.key_pem),
                },
            }
        ],
        "contexts": [{"name": CLUSTER_NAME, "context": {"cluster": CLUSTER_NAME, "user": user}}],
        "current-context": CLUSTER_NAME,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


def write_private(path: Path, content: str | bytes) -> Path:
    """Write a file only its owner can read: these hold private keys."""
    data = content.encode() if isinstance(content, str) else content
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    return path
