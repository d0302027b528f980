"""A Kubernetes operator that runs Serverless Workflow definitions on the SonataFlow runtime."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("orchestrator-operator")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

API_GROUP = "orchestrator.dev"
API_VERSION = "v1alpha1"
