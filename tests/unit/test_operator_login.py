"""The operator's own client logs in with what kopf found: a kubeconfig holds its certificates
base64-encoded, and the client must read them as the watches do."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import kopf
import pytest

from orchestrator_operator.adapters.kube import _ssl_context
from orchestrator_operator.handlers.operator import _credentials, connection_info
from orchestrator_operator.localcluster import kubeconfig
from orchestrator_operator.localcluster.certs import CertificateAuthority


@pytest.fixture
def a_kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CertificateAuthority:
    authority = CertificateAuthority("test-ca")
    client = authority.issue_client("alice", ["team"])
    path = tmp_path / "kubeconfig"
    path.write_text(
        kubeconfig.render("https://127.0.0.1:6443", authority.cert_pem, "alice", client)
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    return authority


def test_a_kubeconfig_with_certificate_data_gives_a_working_tls_context(
    a_kubeconfig: CertificateAuthority,
) -> None:
    info = connection_info(logger=logging.getLogger(__name__), settings=kopf.OperatorSettings())

    assert info is not None
    credentials = _credentials(info)
    assert credentials.server == "https://127.0.0.1:6443"
    assert credentials.ca_data == a_kubeconfig.cert_pem
    assert credentials.certificate_data is not None
    assert credentials.certificate_data.startswith(b"-----BEGIN CERTIFICATE-----")
    context = _ssl_context(credentials)
    assert isinstance(context, ssl.SSLContext)
    # The authority is the only one trusted: the kubeconfig's, not the system's.
    assert [cert["subject"] for cert in context.get_ca_certs()] == [((("commonName", "test-ca"),),)]


def test_pem_handed_on_as_it_is_stays_as_it_is(a_kubeconfig: CertificateAuthority) -> None:
    info = kopf.ConnectionInfo(server="https://example", ca_data=a_kubeconfig.cert_pem.decode())

    assert _credentials(info).ca_data == a_kubeconfig.cert_pem
