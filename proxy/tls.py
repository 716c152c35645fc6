"""TLS settings made usable, checked once at start-up so a file that cannot be read, does not
hold what it should or holds an encrypted key (OpenSSL would ask for its pass phrase on the
terminal) is a configuration error naming the key, and ``rosetta check`` finds it.

Towards upstreams (``backends.<name>.tls``): ``client_context`` builds the ``ssl.SSLContext``
shared by every connection to that upstream. Certificates and host names are always checked:
``ca_file`` replaces the system's trust store (an internal CA, or a legacy server's
self-signed certificate), ``cert_file`` and ``key_file`` add a client certificate for servers
that ask for one (mutual TLS).

For callers (``server.tls``): ``server_options`` checks the certificate and key (and the CAs
of ``client_ca_file``, which makes every caller present a certificate they issued) and gives
uvicorn's options for them; every worker serves HTTPS only."""

from __future__ import annotations

import ssl
from typing import Any

from proxy.settings import ConfigError, ServerTlsSettings, UpstreamTlsSettings


def client_context(tls: UpstreamTlsSettings, where: str) -> ssl.SSLContext:
    """The context for connections to an upstream configured with ``tls`` (at ``where``)."""
    try:
        context = ssl.create_default_context(cafile=tls.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{where}.ca_file: cannot load {tls.ca_file}: {_reason(exc)}") from None
    if tls.cert_file is not None:
        assert tls.key_file is not None  # the settings hold them together
        _load_chain(context, tls.cert_file, tls.key_file, where)
    return context


def server_options(tls: ServerTlsSettings | None, where: str) -> dict[str, Any]:
    """uvicorn's options for serving callers over ``tls`` (none for plain HTTP)."""
    if tls is None:
        return {}
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _load_chain(context, tls.cert_file, tls.key_file, where)
    options: dict[str, Any] = {"ssl_certfile": tls.cert_file, "ssl_keyfile": tls.key_file}
    if tls.client_ca_file is not None:
        try:
            context.load_verify_locations(cafile=tls.client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"{where}.client_ca_file: cannot load {tls.client_ca_file}: {_reason(exc)}"
            ) from None
        options.update(ssl_ca_certs=tls.client_ca_file, ssl_cert_reqs=ssl.CERT_REQUIRED)
    return options


def _load_chain(context: ssl.SSLContext, cert_file: str, key_file: str, where: str) -> None:
    def encrypted() -> bytes:
        raise ConfigError(f"{where}.key_file: {key_file} is encrypted; give an unencrypted key")

    try:
        context.load_cert_chain(cert_file, key_file, password=encrypted)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"{where}.cert_file: cannot load {cert_file} with {key_file}: {_reason(exc)}"
        ) from None


def _reason(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or "not a PEM certificate or key"
    return exc.strerror or type(exc).__name__
