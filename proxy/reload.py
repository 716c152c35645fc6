"""Configuration reload on SIGHUP, in place: re-read and validate the config, build a new
runtime next to the running one, and switch the gateway atomically. Requests in flight finish
on the runtime they started on; its upstream pools are closed after the longest upstream
time-out. A config that does not load, validate or build is logged and the running one kept.

What survives a reload: the session store (and so every session) when its URL is unchanged,
the metrics, and secrets the config leaves to start-up (a generated password of a user that
still has none, the session secret when none is configured). The listening server's keys
(``server.host``, ``port``, ``workers``, ``tls``, ``shutdown_grace_seconds``,
``server_header``) take effect at start only: a reload that changes one switches everything
else and logs ``server_settings_need_restart`` naming them.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import anyio
import structlog

from proxy.app import RosettaApp, Runtime, build_runtime, build_store
from proxy.policy import check_policy
from proxy.settings import ConfigError, ServerSettings, Settings, UpstreamBackendSettings

_log = structlog.get_logger("rosetta.reload")
SettingsLoader = Callable[[], Settings]


def carry_over_secrets(old: Settings, new: Settings) -> Settings:
    """Keep start-up secrets the new config does not set itself."""
    data: dict[str, Any] = new.model_dump()
    old_users = {u.name: u for u in old.users}
    for user in data["users"]:
        previous = old_users.get(user["name"])
        if (
            previous is not None
            and not user["password"]
            and not user["password_hash"]
            and user["generate_password"]
        ):
            user["password"] = previous.password
    if not data["sessions"]["secret"]:
        data["sessions"]["secret"] = old.sessions.secret
    return Settings.model_validate(data)


def _grace(runtime: Runtime) -> float:
    totals = [
        b.timeouts.total
        for b in runtime.settings.backends.values()
        if isinstance(b, UpstreamBackendSettings)
    ]
    return max(totals, default=0.0) + 1.0


_START_ONLY = tuple(name for name in ServerSettings.model_fields if name != "max_body_bytes")
"""``server`` keys the listening server is set up with at start; a reload cannot change them.
Every one but the body limit, which the gateway a reload builds reads."""


def _start_only_changes(old: Settings, new: Settings) -> list[str]:
    return [
        f"server.{key}"
        for key in _START_ONLY
        if getattr(old.server, key) != getattr(new.server, key)
    ]


class Reloader:
    """Owns the app's current runtime and replaces it on request."""

    def __init__(self, app: RosettaApp, runtime: Runtime, load: SettingsLoader) -> None:
        self.app = app
        self.runtime = runtime
        self.load = load
        self._lock = anyio.Lock()
        self._retired: list[Runtime] = []

    async def reload(self) -> bool:
        """Switch to the config as it is now on disk; ``False`` (old one kept) on failure."""
        async with self._lock:
            old = self.runtime
            try:
                settings = carry_over_secrets(old.settings, self.load())
                check_policy(settings, "<reload>")
                same_store = settings.sessions.store == old.settings.sessions.store
                new = build_runtime(
                    settings,
                    store_factory=(lambda _s, _k: old.store) if same_store else build_store,
                    metrics=old.metrics,
                    preload=not same_store,
                )
                await new.start()
            except (ConfigError, ValueError, OSError) as exc:
                _log.error("reload_rejected", reason=str(exc))
                return False
            self.runtime = new
            self.app.gateway = new.gateway
            self.app.state.runtime = new
            _log.info("reloaded", dialects=sorted(settings.inbound), backends=sorted(new.backends))
            changed = _start_only_changes(old.settings, settings)
            if changed:
                _log.warning("server_settings_need_restart", keys=changed)
        await anyio.sleep(_grace(old))
        await old.close(close_store=old.store is not new.store)
        return True

    async def watch(self) -> None:
        """Reload on every SIGHUP until cancelled."""
        with anyio.open_signal_receiver(signal.SIGHUP) as signals:
            async with anyio.create_task_group() as tasks:
                async for _ in signals:
                    tasks.start_soon(self.reload)
