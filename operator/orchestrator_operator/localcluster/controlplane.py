"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
and (to simulate running pods) kube-scheduler with kwok.

Everything lives in one throwaway folder (on /dev/shm when there is one): certificates,
kubeconfigs, etcd's data, the audit log and one log file per component. The folder and every
process are gone after `stop()`, and also when the Python process that started them is killed,
thanks to a reaper process (see `reaper`).
"""

from __future__ import annotations

import functools
import http.client
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from orchestrator_operator.localcluster import binaries as bins
from orchestrator_operator.localcluster import kwok
from orchestrator_operator.localcluster.audit import (
    POLICY,
    SYNC_PATH,
    WRITE_VERBS,
    AuditEvent,
    AuditLog,
    AuditMark,
)
from orchestrator_operator.localcluster.certs import CertificateAuthority, KeyPair, signing_key
from orchestrator_operator.localcluster.kubeconfig import render, write_private
from orchestrator_operator.localcluster.processes import Component, Reaper, free_port, stop_all
from orchestrator_operator.localcluster.rest import RestClient

LOOPBACK = "127.0.0.1"
ADMIN_USER = "admin"
MASTERS_GROUP = "system:masters"
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
FIELD_MANAGER = "orchestrator-localcluster"

# What the controller manager runs: enough for garbage collection, namespace deletion,
# Deployments down to pods, service accounts and their tokens, Services' endpoints, Jobs and
# StatefulSets, and the aggregated RBAC roles (admin, edit, view). Each controller left out is
# informers and CPU saved on a two-core machine.
CONTROLLERS = (
    "garbage-collector-controller",
    "namespace-controller",
    "deployment-controller",
    "replicaset-controller",
    "statefulset-controller",
    "job-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "endpointslice-controller",
    "clusterrole-aggregation-controller",
)

ETCD = "etcd"
APISERVER = "kube-apiserver"
CONTROLLER_MANAGER = "kube-controller-manager"
SCHEDULER = "kube-scheduler"
KWOK = "kwok"


class ControlPlaneError(RuntimeError):
    """The control plane failed to start; the message ends with the failing component's log."""


@dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int

    def all(self) -> tuple[int, ...]:
        return (self.etcd_client, self.etcd_peer, self.apiserver)


def _default_parent() -> Path | None:
    # etcd's data on tmpfs spares the disk's fsync latency; no folder there means the default.
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else None


class LocalControlPlane:
    """Start with `start()` or a `with` block; `kubeconfig` then points at an admin config.

    simulate_pods: also run kube-scheduler and kwok with one fake Node, so that pods get
        scheduled and turn Running and Ready, and Deployments report Available.
    crds: YAML files whose CustomResourceDefinitions are installed before the controller
        manager starts (its garbage collector then knows these kinds from the start).
    build: build missing binaries (minutes when cold); if false, missing ones are an error.
    keep_dir: keep the folder (logs, audit log, etcd data) after stopping, for a post-mortem.
    parent_dir: where the folder is made; /dev/shm by default, when present.
    extra_args: more command-line flags per component name, e.g.
        {"kube-apiserver": ["--feature-gates=..."]}.
    """

    def __init__(
        self,
        *,
        simulate_pods: bool = True,
        crds: Iterable[Path] = (),
        build: bool = True,
        start_timeout: float = 90.0,
        stop_grace: float = 5.0,
        keep_dir: bool = False,
        parent_dir: Path | None = None,
        extra_args: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.simulate_pods = simulate_pods
        self._crd_files = [Path(path) for path in crds]
        self._build = build
        self._start_timeout = start_timeout
        self._stop_grace = stop_grace
        self._keep_dir = keep_dir
        self._parent_dir = parent_dir if parent_dir is not None else _default_parent()
        self._extra_args = {name: list(args) for name, args in (extra_args or {}).items()}

        self._dir: Path | None = None
        self._reaper: Reaper | None = None
        self._components: dict[str, Component] = {}
        self._ports: Ports | None = None
        self._client_ca: CertificateAuthority | None = None
        self._server_ca_pem = b""
        self._rest: RestClient | None = None
        self.started_in: float | None = None

    # Lifecycle

    def __enter__(self) -> LocalControlPlane:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> LocalControlPlane:
        if self._dir is not None:
            raise ControlPlaneError("this control plane is already started")
        started = time.monotonic()
        wanted = [bins.ETCD, bins.KUBE_APISERVER, bins.KUBE_CONTROLLER_MANAGER]
        if self.simulate_pods:
            wanted += [bins.KUBE_SCHEDULER, bins.KWOK]
        binaries = bins.ensure_binaries(wanted, build=self._build)

        # Free ports are picked before the servers bind them, so another process may take one
        # in between; that start is abandoned and tried once more with new ports.
        for attempt in (1, 2):
            try:
                self._start_once(binaries)
            except ControlPlaneError as error:
                self.stop()
                if attempt == 1 and "address already in use" in str(error):
                    continue
                raise
            except BaseException:
                self.stop()
                raise
            break
        self.started_in = time.monotonic() - started
        return self

    def _start_once(self, binaries: bins.Binaries) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="orchestrator-cp-", dir=self._parent_dir))
        self._reaper = Reaper(self._dir, grace=self._stop_grace, keep_folder=self._keep_dir)
        self._ports = Ports(free_port(), free_port(), free_port())
        self._write_credentials()
        self._start_etcd(binaries)
        self._start_apiserver(binaries)
        self._apply_crd_files()
        self._start_controllers(binaries)
        self._wait_until_serving_workloads()

    def stop(self) -> None:
        """Stop every component (SIGTERM, then SIGKILL) and remove the folder. Idempotent."""
        if self._dir is None:
            return
        # Clients of the apiserver first, so they do not spend the grace period retrying it.
        order = [[KWOK, SCHEDULER, CONTROLLER_MANAGER], [APISERVER], [ETCD]]
        for names in order:
            group = [self._components[name] for name in names if name in self._components]
            stop_all(group, self._stop_grace)
        self._components.clear()
        if self._reaper is not None:
            self._reaper.release(timeout=self._stop_grace + 5)
            self._reaper = None
        if not self._keep_dir:
            shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None
        self._rest = None

    # What the outside uses

    @property
    def dir(self) -> Path:
        if self._dir is None:
            raise ControlPlaneError("the control plane is not running")
        return self._dir

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://{LOOPBACK}:{self.ports.apiserver}"

    @property
    def ports(self) -> Ports:
        if self._ports is None:
            raise ControlPlaneError("the control plane is not running")
        return self._ports

    @property
    def ca_pem(self) -> bytes:
        """The CA that signed kube-apiserver's serving certificate."""
        return self._server_ca_pem

    @property
    def audit(self) -> AuditLog:
        return AuditLog(self.dir / "audit.log")

    @property
    def process_group(self) -> int:
        """The process group every component runs in, led by the reaper.

        Another process started in it (`processes.Component(..., process_group=...)`), such as
        an operator under test, goes with the control plane: at `stop()`, and also when the
        owner dies without stopping it, SIGKILL included.
        """
        if self._reaper is None:
            raise ControlPlaneError("the control plane is not running")
        return self._reaper.process_group

    def pids(self) -> dict[str, int]:
        """Process ids by component name, the reaper included."""
        pids = {name: component.pid for name, component in self._components.items()}
        if self._reaper is not None:
            pids["reaper"] = self._reaper.process.pid
        return pids

    def log_path(self, component: str) -> Path:
        return self.dir / f"{component}.log"

    def mint_kubeconfig(self, user: str, groups: Sequence[str] = ()) -> Path:
        """A kubeconfig for another identity, for RBAC tests: a client certificate whose CN is
        `user` and whose O entries are `groups`. Nothing is granted to it here."""
        if self._client_ca is None:
            raise ControlPlaneError("the control plane is not running")
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", user)
        path = self.dir / f"kubeconfig-{safe}"
        credentials = self._client_ca.issue_client(user, groups)
        write_private(path, render(self.server, self._server_ca_pem, user, credentials))
        return path

    def sync_audit(self, timeout: float = 10.0) -> None:
        """Wait until every request that finished before this call is in the audit log.

        kube-apiserver may answer a request before its audit line is written. A request made
        now, whose own line then appears, bounds that: the lines of earlier requests are there.
        The marker request is left out of what `AuditLog` reads.
        """
        marker = f"{SYNC_PATH}{uuid.uuid4().hex}"
        log = self.audit
        before = log.mark()
        self._client().get(marker)
        self._wait(
            lambda: log.has_marker(marker, since=before),
            timeout,
            "the audit log to record a marker request",
        )

    def audit_events(self, since: AuditMark | None = None) -> list[AuditEvent]:
        self.sync_audit()
        return self.audit.events(since)

    def count_requests(
        self,
        *,
        since: AuditMark | None = None,
        namespace: str | None = None,
        verbs: Collection[str] | None = WRITE_VERBS,
        user: str | None = None,
        resource: str | None = None,
        subresource: str | None = None,
    ) -> int:
        """Requests in the audit log matching every filter given (by default, writes)."""
        self.sync_audit()
        return self.audit.count(
            since=since,
            namespace=namespace,
            verbs=verbs,
            user=user,
            resource=resource,
            subresource=subresource,
        )

    def apply_crds(self, paths: Iterable[Path], timeout: float = 30.0) -> list[str]:
        """Server-side apply the CustomResourceDefinitions in these files, wait until each is
        Established, and return their names."""
        names: list[str] = []
        for manifest in _crd_manifests(paths):
            name = manifest["metadata"]["name"]
            self._client().apply(
                f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}",
                manifest,
                field_manager=FIELD_MANAGER,
            )
            names.append(name)
        for name in names:
            self._wait(
                functools.partial(self._crd_established, name),
                timeout,
                f"CustomResourceDefinition {name} to be Established",
            )
        return names

    # Start-up steps

    def _write_credentials(self) -> None:
        pki = self.dir / "pki"
        pki.mkdir()
        server_ca = CertificateAuthority("orchestrator-local-server-ca")
        client_ca = CertificateAuthority("orchestrator-local-client-ca")
        serving = server_ca.issue_server(
            "kube-apiserver",
            ips=[LOOPBACK, "10.96.0.1"],
            dns=["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
        )
        service_accounts = signing_key()
        self._client_ca = client_ca
        self._server_ca_pem = server_ca.cert_pem

        (pki / "server-ca.crt").write_bytes(server_ca.cert_pem)
        (pki / "client-ca.crt").write_bytes(client_ca.cert_pem)
        (pki / "serving.crt").write_bytes(serving.cert_pem)
        write_private(pki / "serving.key", serving.key_pem)
        (pki / "service-accounts.pub").write_bytes(service_accounts.public_pem)
        write_private(pki / "service-accounts.key", service_accounts.private_pem)

        admin = client_ca.issue_client(ADMIN_USER, [MASTERS_GROUP])
        (pki / "admin.crt").write_bytes(admin.cert_pem)
        write_private(pki / "admin.key", admin.key_pem)
        write_private(self.kubeconfig, render(self.server, server_ca.cert_pem, ADMIN_USER, admin))

        # Each component gets its own name, so the audit log tells their requests apart.
        identities = {
            CONTROLLER_MANAGER: "system:kube-controller-manager",
            SCHEDULER: "system:kube-scheduler",
            KWOK: "system:kwok-controller",
        }
        for component, user in identities.items():
            credentials: KeyPair = client_ca.issue_client(user, [MASTERS_GROUP])
            write_private(
                self._component_kubeconfig(component),
                render(self.server, server_ca.cert_pem, user, credentials),
            )

        self._rest = RestClient(
            LOOPBACK,
            self.ports.apiserver,
            ca_file=pki / "server-ca.crt",
            cert_file=pki / "admin.crt",
            key_file=pki / "admin.key",
        )

    def _start_etcd(self, binaries: bins.Binaries) -> None:
        ports = self.ports
        client_url = f"http://{LOOPBACK}:{ports.etcd_client}"
        peer_url = f"http://{LOOPBACK}:{ports.etcd_peer}"
        self._launch(
            ETCD,
            binaries[bins.ETCD],
            [
                "--name=default",
                f"--data-dir={self.dir / 'etcd-data'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                # The data is thrown away with the folder, so durability buys nothing.
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        self._wait(
            lambda: _http_ok(LOOPBACK, ports.etcd_client, "/health"),
            self._start_timeout,
            "etcd to report healthy",
            watch=[ETCD],
        )

    def _start_apiserver(self, binaries: bins.Binaries) -> None:
        pki = self.dir / "pki"
        policy = self.dir / "audit-policy.yaml"
        policy.write_text(yaml.safe_dump(POLICY, sort_keys=False))
        self._launch(
            APISERVER,
            binaries[bins.KUBE_APISERVER],
            [
                f"--etcd-servers=http://{LOOPBACK}:{self.ports.etcd_client}",
                f"--bind-address={LOOPBACK}",
                f"--secure-port={self.ports.apiserver}",
                f"--cert-dir={pki}",
                f"--tls-cert-file={pki / 'serving.crt'}",
                f"--tls-private-key-file={pki / 'serving.key'}",
                f"--client-ca-file={pki / 'client-ca.crt'}",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={pki / 'service-accounts.pub'}",
                f"--service-account-signing-key-file={pki / 'service-accounts.key'}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                "--authorization-mode=RBAC",
                "--allow-privileged=true",
                "--profiling=false",
                f"--audit-policy-file={policy}",
                f"--audit-log-path={self.dir / 'audit.log'}",
                "--audit-log-format=json",
                # Never rotate: a rotation would move lines out from under an AuditMark.
                "--audit-log-maxsize=0",
                "--audit-log-mode=blocking",
            ],
        )
        self._wait(
            lambda: self._client().get("/readyz", timeout=2).status == 200,
            self._start_timeout,
            "kube-apiserver to report ready (/readyz)",
            watch=[ETCD, APISERVER],
        )

    def _apply_crd_files(self) -> None:
        # Before the controller manager starts, so that its garbage collector knows these kinds
        # from its first discovery instead of after its next periodic resync.
        if self._crd_files:
            self.apply_crds(self._crd_files, timeout=self._start_timeout)

    def _start_controllers(self, binaries: bins.Binaries) -> None:
        pki = self.dir / "pki"
        self._launch(
            CONTROLLER_MANAGER,
            binaries[bins.KUBE_CONTROLLER_MANAGER],
            [
                f"--kubeconfig={self._component_kubeconfig(CONTROLLER_MANAGER)}",
                "--leader-elect=false",
                "--secure-port=0",
                f"--controllers={','.join(CONTROLLERS)}",
                f"--root-ca-file={pki / 'server-ca.crt'}",
                f"--service-account-private-key-file={pki / 'service-accounts.key'}",
                "--use-service-account-credentials=false",
                # The default client limit (20 requests a second) makes the controller manager
                # the slowest part of any run with more than a few Deployments: what the tests
                # and benchmarks time would be its queue, not the code under test.
                "--kube-api-qps=500",
                "--kube-api-burst=1000",
                "--concurrent-deployment-syncs=10",
                "--concurrent-replicaset-syncs=10",
            ],
        )
        if not self.simulate_pods:
            return
        self._launch(
            SCHEDULER,
            binaries[bins.KUBE_SCHEDULER],
            [
                f"--kubeconfig={self._component_kubeconfig(SCHEDULER)}",
                "--leader-elect=false",
                "--secure-port=0",
            ],
        )
        stages = self.dir / "kwok.yaml"
        stages.write_text(kwok.stages_config())
        self._launch(
            KWOK,
            binaries[bins.KWOK],
            kwok.kwok_args(str(self._component_kubeconfig(KWOK)), str(stages)),
        )
        self._client().expect("POST", "/api/v1/nodes", kwok.node_manifest())
        # Admission gives every new Node the not-ready taint, and only the node-lifecycle
        # controller, which is not run here, would lift it once the node is Ready.
        self._client().expect(
            "PATCH",
            f"/api/v1/nodes/{kwok.NODE_NAME}",
            {"spec": {"taints": None}},
            content_type="application/merge-patch+json",
        )

    def _wait_until_serving_workloads(self) -> None:
        watched = list(self._components)
        # The default service account appears once the controller manager is at work; pods
        # cannot be created in a namespace before its default service account exists.
        self._wait(
            lambda: self._exists("/api/v1/namespaces/default/serviceaccounts/default"),
            self._start_timeout,
            "kube-controller-manager to create the default service account",
            watch=watched,
        )
        if self.simulate_pods:
            self._wait(
                self._node_ready,
                self._start_timeout,
                f"kwok to make node {kwok.NODE_NAME} Ready",
                watch=watched,
            )

    # Helpers

    def _launch(self, name: str, binary: Path, args: list[str]) -> None:
        if self._reaper is None:
            raise ControlPlaneError("the reaper must run before any component starts")
        argv = [str(binary), *args, *self._extra_args.get(name, [])]
        self._components[name] = Component(
            name, argv, self.log_path(name), process_group=self._reaper.process_group
        )

    def _component_kubeconfig(self, component: str) -> Path:
        return self.dir / f"kubeconfig-{component}"

    def _client(self) -> RestClient:
        if self._rest is None:
            raise ControlPlaneError("the control plane is not running")
        return self._rest

    def _exists(self, path: str) -> bool:
        return self._client().get(path).status == 200

    def _crd_established(self, name: str) -> bool:
        response = self._client().get(
            f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
        )
        if response.status != 200:
            return False
        return _condition_true(response.json(), "Established")

    def _node_ready(self) -> bool:
        response = self._client().get(f"/api/v1/nodes/{kwok.NODE_NAME}")
        return response.status == 200 and _condition_true(response.json(), "Ready")

    def _wait(
        self,
        condition: Callable[[], bool],
        timeout: float,
        what: str,
        *,
        watch: Sequence[str] = (),
    ) -> None:
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            for name in watch:
                component = self._components[name]
                if not component.running():
                    raise ControlPlaneError(
                        f"{name} exited with code {component.process.returncode} while waiting "
                        f"for {what}; last lines of {component.log_path}:\n{component.tail()}"
                    )
            try:
                if condition():
                    return
            except (OSError, http.client.HTTPException) as error:
                last_error = error
            if time.monotonic() > deadline:
                logs = "\n".join(
                    f"--- {name}:\n{self._components[name].tail(15)}" for name in watch
                )
                raise ControlPlaneError(
                    f"timed out after {timeout:.0f}s waiting for {what} "
                    f"(last error: {last_error})\n{logs}"
                )
            time.sleep(0.1)

    def __repr__(self) -> str:
        where = self._dir or "not running"
        return f"LocalControlPlane({where})"


def _condition_true(obj: dict[str, Any], kind: str) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)


def _http_ok(host: str, port: int, path: str) -> bool:
    connection = http.client.HTTPConnection(host, port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    finally:
        connection.close()


def _crd_manifests(paths: Iterable[Path]) -> list[dict[str, Any]]:
    manifests: list[dict[str, Any]] = []
    for path in paths:
        with path.open(encoding="utf-8") as handle:
            for document in yaml.safe_load_all(handle):
                if (
                    isinstance(document, dict)
                    and document.get("kind") == "CustomResourceDefinition"
                ):
                    manifests.append(document)
    return manifests
