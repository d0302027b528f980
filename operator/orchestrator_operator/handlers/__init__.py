"""kopf registrations: thin functions that hand what the watches see to the controllers.

Importing this package registers every handler with kopf's default registry.
"""

from orchestrator_operator.handlers import (
    caches,
    installation,
    operator,
    secrets,
    sources,
)

__all__ = ["caches", "installation", "operator", "secrets", "sources"]
