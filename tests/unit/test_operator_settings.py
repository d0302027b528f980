"""kopf runs with the operator's own settings: its marks under orchestrator.dev, and watches
that end within minutes, so that a stream a proxy dropped without a word is noticed."""

from __future__ import annotations

import asyncio
import logging

import kopf

from orchestrator_operator.handlers.operator import apply_settings, configure


def test_watches_are_ended_by_the_server_and_given_up_by_the_client_soon_after() -> None:
    settings = kopf.OperatorSettings()
    # kopf's defaults leave every watch open for as long as the server likes.
    assert settings.watching.server_timeout is None
    assert settings.watching.client_timeout is None

    apply_settings(settings)

    watching = settings.watching
    assert watching.server_timeout == 300
    # kopf sends str(server_timeout) as timeoutSeconds; the API server parses an integer.
    assert str(watching.server_timeout) == "300"
    assert watching.client_timeout is not None
    assert watching.server_timeout < watching.client_timeout <= watching.server_timeout + 60
    assert watching.connect_timeout == 10
    assert settings.networking.request_timeout == 60
    assert settings.networking.connect_timeout == 10


def test_kopfs_marks_carry_the_operators_domain() -> None:
    settings = kopf.OperatorSettings()

    apply_settings(settings)

    assert settings.persistence.finalizer == "orchestrator.dev/finalizer"
    progress = settings.persistence.progress_storage
    assert isinstance(progress, kopf.AnnotationsProgressStorage)
    assert progress.prefix == "orchestrator.dev"
    diffbase = settings.persistence.diffbase_storage
    assert isinstance(diffbase, kopf.AnnotationsDiffBaseStorage)
    assert (diffbase.prefix, diffbase.key) == ("orchestrator.dev", "last-handled-configuration")
    assert settings.posting.level == logging.WARNING


def test_the_startup_handler_applies_them() -> None:
    settings = kopf.OperatorSettings()
    memo = kopf.Memo()

    asyncio.run(configure(settings=settings, memo=memo, logger=logging.getLogger(__name__)))

    assert settings.watching.server_timeout == 300
    assert settings.persistence.finalizer == "orchestrator.dev/finalizer"
    assert memo.state.config.workers >= 1
