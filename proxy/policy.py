"""Safety rules a config must meet beyond its schema, checked by ``rosetta check`` and at
start-up: service credentials are never usable by anonymous callers unless the config says
``allow_anonymous: true`` in so many words."""

from __future__ import annotations

from proxy.settings import ConfigError, Settings, UpstreamBackendSettings


def check_policy(settings: Settings, source: str) -> None:
    problems = []
    can_authenticate = bool(
        settings.users
        or any(t.token for t in settings.tokens)
        or any(k.access_key and k.secret_key for k in settings.access_keys)
    )
    for name, backend in settings.backends.items():
        if not isinstance(backend, UpstreamBackendSettings) or backend.auth.mode != "static":
            continue
        if not backend.allow_anonymous and not can_authenticate:
            problems.append(
                f"{source}: backends.{name}.auth: static service credentials need callers to "
                "authenticate to Rosetta, but no users, tokens or access keys are configured "
                "(add some, or set allow_anonymous: true to expose the service account)"
            )
    if problems:
        raise ConfigError("\n".join(problems))
