"""Configuration: YAML with ``${VAR}`` / ``${VAR:-default}`` interpolation, validated into typed
objects at start-up. Every error names the file and the key path (``backends.legacy.url``)."""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

DEFAULT_CONFIG_NAME = "rosetta.yaml"
_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


class ConfigError(Exception):
    """A configuration that cannot be used; the message names file and key path."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerTlsSettings(_Strict):
    """HTTPS for callers: Rosetta's certificate (PEM, the chain after it) and its key (PEM,
    unencrypted, readable by Rosetta only); with ``client_ca_file``, only callers presenting a
    certificate from those CAs get a connection (mutual TLS)."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    max_body_bytes: Annotated[int, Field(ge=1024)] = 1024 * 1024
    shutdown_grace_seconds: Annotated[float, Field(ge=0)] = 30.0
    server_header: bool = False
    tls: ServerTlsSettings | None = None


class InboundSettings(_Strict):
    """One dialect callers may speak to Rosetta."""

    enabled: bool = True
    prefix: str = ""  # mounted under this path prefix; "" keeps the standard paths
    backend: str | None = None  # None: ``default_backend``
    options: dict[str, Any] = Field(default_factory=dict)


class TimeoutSettings(_Strict):
    connect: Annotated[float, Field(gt=0)] = 2.0
    read: Annotated[float, Field(gt=0)] = 10.0
    total: Annotated[float, Field(gt=0)] = 15.0


class UpstreamAuthSettings(_Strict):
    mode: Literal["passthrough", "static"] = "passthrough"
    user: str | None = None
    password: str | None = Field(default=None, repr=False)
    token: str | None = Field(default=None, repr=False)
    access_key: str | None = None
    secret_key: str | None = Field(default=None, repr=False)


class LocalBackendSettings(_Strict):
    """Rosetta's own session registry."""

    type: Literal["local"] = "local"
    node_id: str = "rosetta-node-1"
    service: str | None = None  # None: the dialect the session logged in with
    project_id: str | None = None  # pinned GeminiDB project id (None: any accepted)
    instance_id: str | None = None  # pinned GeminiDB instance id (None: any accepted)
    sessions_file: str | None = None  # canonical session records to preload


class ProtectionSettings(_Strict):
    """Guards around one upstream (see ``proxy.protection``); 0 switches a guard off."""

    max_in_flight: Annotated[int, Field(ge=0)] = 256
    breaker_threshold: Annotated[int, Field(ge=0)] = 5
    breaker_cool_down_seconds: Annotated[float, Field(gt=0)] = 10.0
    retry_attempts: Annotated[int, Field(ge=1, le=10)] = 2
    retry_backoff_seconds: Annotated[float, Field(ge=0)] = 0.05


class UpstreamTlsSettings(_Strict):
    """How Rosetta checks an ``https://`` upstream's certificate and, for mutual TLS, proves
    itself to it. Certificates are always checked; there is no switch to turn that off."""

    ca_file: str | None = None  # PEM: the CAs (or self-signed certificate) to trust instead
    cert_file: str | None = None  # PEM: Rosetta's client certificate (mutual TLS)
    key_file: str | None = None  # PEM: its private key, unencrypted (readable by Rosetta only)

    @model_validator(mode="after")
    def _pair(self) -> UpstreamTlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (the client certificate)")
        return self


class UpstreamBackendSettings(_Strict):
    """A server speaking one of the dialects."""

    type: Literal["upstream"] = "upstream"
    dialect: str
    url: str
    timeouts: TimeoutSettings = Field(default_factory=TimeoutSettings)
    transport: Literal["httptools", "aiohttp", "httpx"] = "httptools"
    protection: ProtectionSettings = Field(default_factory=ProtectionSettings)
    max_connections: Annotated[int, Field(ge=1)] = 100
    auth: UpstreamAuthSettings = Field(default_factory=UpstreamAuthSettings)
    options: dict[str, Any] = Field(default_factory=dict)
    # static credentials usable by callers who did not authenticate: only a literal YAML
    # ``true`` turns this on (no strings such as "yes" or "1", no ${VAR} interpolation)
    allow_anonymous: StrictBool = False
    tls: UpstreamTlsSettings | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _tls_needs_https(self) -> UpstreamBackendSettings:
        if self.tls is not None and not self.url.startswith("https://"):
            raise ValueError("tls applies to an https:// url only")
        return self


BackendSettings = Annotated[
    LocalBackendSettings | UpstreamBackendSettings, Field(discriminator="type")
]


class SessionSettings(_Strict):
    store: str = "memory"  # "memory" or a redis:// URL
    idle_timeout_seconds: Annotated[float, Field(ge=0)] = 1800
    absolute_lifetime_seconds: Annotated[float, Field(ge=0)] = 86400
    secret: str | None = Field(default=None, repr=False)  # keys token hashes and JWTs
    # encrypts upstream credentials kept with sessions in shared stores; empty: derived from
    # ``secret`` (see docs/sessions.md)
    encryption_key: str | None = Field(default=None, repr=False)
    key_prefix: Annotated[str, Field(min_length=1)] = "rosetta:"  # Redis key namespace
    store_timeout_seconds: Annotated[float, Field(gt=0)] = 2.0  # Redis connect/read time-out
    jwt_max_age_seconds: Annotated[int, Field(ge=1)] = 28800

    @field_validator("store")
    @classmethod
    def _known_store(cls, value: str) -> str:
        if value != "memory" and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be 'memory' or a redis:// URL")
        return value


class UserSettings(_Strict):
    name: Annotated[str, Field(min_length=1)]
    password: str | None = Field(default=None, repr=False)
    password_hash: str | None = Field(default=None, repr=False)
    role: Literal["admin", "user"] = "user"
    generate_password: bool = False  # empty password: generate one and print it once


class TokenSettings(_Strict):
    token: str = Field(repr=False)  # an empty token (unset variable) is ignored
    user: str


class AccessKeySettings(_Strict):
    """An AK/SK pair; a pair with an empty half (unset variables) is ignored."""

    access_key: str
    secret_key: str = Field(repr=False)
    user: str = "admin"


class AuthSettings(_Strict):
    signature_max_skew_seconds: Annotated[int, Field(ge=1)] = 900


class LoggingSettings(_Strict):
    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = True


class RateLimitSettings(_Strict):
    """Per-caller rate limiting (see ``proxy.ratelimit``); off unless ``enabled``."""

    enabled: bool = False
    requests_per_second: Annotated[float, Field(gt=0)] = 10.0
    burst: Annotated[int, Field(ge=1)] | None = None  # None: requests_per_second, at least 1
    store: Literal["memory", "sessions"] = "memory"  # sessions: the Redis of sessions.store
    key: Literal["caller", "ip"] = "caller"  # caller: identity when given, else client IP
    timeout_seconds: Annotated[float, Field(gt=0)] = 0.25  # Redis time-out; then fail open


class TracingSettings(_Strict):
    """OpenTelemetry tracing (see ``proxy.tracing``); off unless ``enabled``."""

    enabled: bool = False
    service_name: Annotated[str, Field(min_length=1)] = "rosetta"
    exporter: Literal["otlp", "console"] = "otlp"
    # OTLP over HTTP, the traces URL (http://collector:4318/v1/traces); None: the
    # OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT environment variables
    endpoint: str | None = None
    headers: dict[str, str] = Field(default_factory=dict, repr=False)  # e.g. collector auth
    sample_ratio: Annotated[float, Field(ge=0, le=1)] = 1.0  # of traces Rosetta starts


def _default_backends() -> dict[str, BackendSettings]:
    return {"local": LocalBackendSettings()}


class Settings(_Strict):
    server: ServerSettings = Field(default_factory=ServerSettings)
    inbound: dict[str, InboundSettings] = Field(default_factory=dict)
    backends: dict[str, BackendSettings] = Field(default_factory=_default_backends)
    default_backend: str = "local"
    sessions: SessionSettings = Field(default_factory=SessionSettings)
    users: list[UserSettings] = Field(default_factory=list)
    tokens: list[TokenSettings] = Field(default_factory=list)
    access_keys: list[AccessKeySettings] = Field(default_factory=list)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)


def interpolate(value: Any, path: str = "", source: str = "<config>") -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of a parsed YAML tree."""
    if isinstance(value, dict):
        return {k: interpolate(v, _join(path, str(k)), source) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, _join(path, str(i)), source) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name)
        if found is not None:
            return found
        if default is not None:
            return default
        raise ConfigError(f"{source}: {path}: environment variable {name} is not set")

    return _ENV_PATTERN.sub(substitute, value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _location(loc: tuple[int | str, ...]) -> str:
    parts = list(loc)
    # a discriminated union puts the member's tag after the backend name; it is not a key
    if len(parts) > 2 and parts[0] == "backends" and parts[2] in ("local", "upstream"):
        del parts[2]
    return ".".join(str(p) for p in parts) or "<root>"


def parse_settings(raw: Any, source: str) -> Settings:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: <root>: must be a mapping")
    data = interpolate(raw, source=source)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        lines = [f"{source}: {_location(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("\n".join(lines)) from None


def default_config_text() -> str:
    """The embedded default configuration (``config/rosetta.yaml``)."""
    return resources.files("config").joinpath(DEFAULT_CONFIG_NAME).read_text(encoding="utf-8")


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Where and what, without PyYAML's quote of the offending line: that line may hold a
    secret, and this message reaches stderr and the reload log."""
    parts = []
    for text, mark in (
        (getattr(exc, "context", None), getattr(exc, "context_mark", None)),
        (getattr(exc, "problem", None), getattr(exc, "problem_mark", None)),
    ):
        if mark is not None:
            at = f"line {mark.line + 1}, column {mark.column + 1}"
            parts.append(f"{text} at {at}" if text else f"at {at}")
    return f": {'; '.join(parts)}" if parts else ""


def load_settings(path: str | Path | None = None) -> Settings:
    """Load a config file, or the embedded default when ``path`` is ``None``."""
    if path is None:
        source, text = f"<embedded {DEFAULT_CONFIG_NAME}>", default_config_text()
    else:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML{_yaml_problem(exc)}") from None
    return parse_settings(raw, source)
