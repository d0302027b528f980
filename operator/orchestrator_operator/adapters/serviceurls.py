"""Where the operator's own HTTP calls go: the in-cluster URL, or a replacement for it.

Inside the cluster the operator asks `http://<service>.<namespace>` like any workflow does. An
operator running outside (a developer's machine, the quick start) cannot resolve those names,
so the URLs can be replaced: per URL through an exact mapping, or for every in-cluster URL
through one template in which `{name}` and `{namespace}` stand for the Service's. With
`kubectl proxy` the template is
`http://127.0.0.1:8001/api/v1/namespaces/{namespace}/services/{name}:80/proxy`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(frozen=True)
class ServiceUrls:
    # Base URL (scheme://host[:port]) -> the base URL to use instead.
    mapping: Mapping[str, str] = field(default_factory=dict)
    # Base URL for every in-cluster service; may hold {name} and {namespace}.
    template: str | None = None

    def reachable(self, url: str, *, in_cluster: bool = True) -> str:
        """The URL to call for `url`; `in_cluster` says that it names a cluster Service."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        rest = url[len(origin) :]
        if origin in self.mapping:
            return self.mapping[origin].rstrip("/") + rest
        if not in_cluster or not self.template or not parts.hostname:
            return url
        labels = parts.hostname.split(".")
        base = self.template.replace("{name}", labels[0]).replace(
            "{namespace}", labels[1] if len(labels) > 1 else ""
        )
        return base.rstrip("/") + rest
