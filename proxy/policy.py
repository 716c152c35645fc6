"""Safety rules a config must meet beyond its schema, checked by ``rosetta check`` and by
``rosetta serve`` before anything starts (on the config as written, before start-up fills in
generated secrets):

- An upstream in ``static`` mode needs service credentials to send (user/password, a token,
  or an access key pair).
- Static service credentials are never usable by anonymous callers unless the backend says
  ``allow_anonymous: true`` in so many words: callers must be able to authenticate to Rosetta
  itself (configured users, tokens or key pairs), and no enabled inbound dialect routed to such
  a backend may have authentication switched off in its options. (At run time the upstream
  backend authenticates every caller before it lends the service credentials; an anonymous
  ``session.ping`` is forwarded with no credentials at all.)
- A shared (Redis) store needs ``sessions.secret`` set: token hashes and JWTs are keyed by it,
  so every replica must use the same one, and it must survive restarts.
"""

from __future__ import annotations

from typing import Any

from proxy.settings import ConfigError, Settings, UpstreamBackendSettings

# inbound options that would let callers in without authenticating (no translator has them
# today; refusing them here keeps a future one from opening a static upstream by accident)
_AUTH_OFF_OPTIONS = ("anonymous", "allow_anonymous", "skip_auth", "no_auth")
_AUTH_OFF_VALUES: dict[str, tuple[Any, ...]] = {
    "auth": ("none", "off", False),
    "authenticate": (False,),
    "authentication": ("none", "off", False),
}


def check_policy(settings: Settings, source: str) -> None:
    problems = [
        *_static_upstreams(settings, source),
        *_shared_store(settings, source),
    ]
    if problems:
        raise ConfigError("\n".join(problems))


def _static_upstreams(settings: Settings, source: str) -> list[str]:
    problems: list[str] = []
    users = bool(settings.users)
    tokens = any(t.token for t in settings.tokens)
    keys = any(k.access_key and k.secret_key for k in settings.access_keys)
    for name, backend in settings.backends.items():
        if not isinstance(backend, UpstreamBackendSettings) or backend.auth.mode != "static":
            continue
        where = f"{source}: backends.{name}"
        auth = backend.auth
        if not (
            (auth.user and auth.password) or auth.token or (auth.access_key and auth.secret_key)
        ):
            problems.append(
                f"{where}.auth: static mode needs service credentials (user and password, "
                "token, or access_key and secret_key)"
            )
        if backend.allow_anonymous:
            continue
        routes = [
            (dialect, inbound)
            for dialect, inbound in settings.inbound.items()
            if inbound.enabled and (inbound.backend or settings.default_backend) == name
        ]
        if not (users or tokens or keys):
            problems.append(
                f"{where}.auth: static service credentials need callers to authenticate to "
                "Rosetta, but no users, tokens or access keys are configured (add some, or set "
                "allow_anonymous: true to expose the service account)"
            )
            continue
        for dialect, inbound in routes:
            switched_off = _auth_switched_off(inbound.options)
            if switched_off:
                problems.append(
                    f"{source}: inbound.{dialect}.options.{switched_off}: skips authentication, "
                    f"but the route leads to backends.{name}, which uses static service "
                    "credentials (remove the option, or set allow_anonymous: true on the backend)"
                )
    return problems


def _auth_switched_off(options: dict[str, Any]) -> str | None:
    for key in _AUTH_OFF_OPTIONS:
        if options.get(key) is True:
            return key
    for key, values in _AUTH_OFF_VALUES.items():
        if key in options and options[key] in values:
            return key
    return None


def _shared_store(settings: Settings, source: str) -> list[str]:
    if settings.sessions.store == "memory" or settings.sessions.secret:
        return []
    return [
        f"{source}: sessions.secret: a shared session store ({_redacted(settings.sessions.store)})"
        " needs a session secret that every replica shares and that survives restarts "
        "(set ROSETTA_SESSION_SECRET, or sessions.secret)"
    ]


def _redacted(url: str) -> str:
    """A store URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest
