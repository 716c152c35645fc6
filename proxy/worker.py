"""Entry point of each worker process when ``--workers`` > 1: rebuilds the app from the
settings the parent resolved (so every worker shares one session secret and one set of
generated passwords)."""

from __future__ import annotations

import os

from starlette.applications import Starlette

from proxy import logs
from proxy.allocator import release_large_buffers
from proxy.app import create_app
from proxy.gctune import tune_for_serving
from proxy.settings import Settings

RESOLVED_SETTINGS_ENV = "ROSETTA_RESOLVED_SETTINGS"


def app_from_environment() -> Starlette:
    release_large_buffers()
    settings = Settings.model_validate_json(os.environ[RESOLVED_SETTINGS_ENV])
    logs.configure(settings.logging.format, settings.logging.level)
    app = create_app(settings)
    tune_for_serving()
    return app
