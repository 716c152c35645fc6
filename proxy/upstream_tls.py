"""TLS towards upstreams: the ``ssl.SSLContext`` of a backend's ``tls:`` settings, built once
at start-up and shared by every connection to that upstream. Certificates and host names are
always checked: ``ca_file`` replaces the system's trust store (an internal CA, or a legacy
server's self-signed certificate), ``cert_file`` and ``key_file`` add a client certificate
for servers that ask for one (mutual TLS). A file that cannot be read or does not hold what
it should is a configuration error naming the key, so ``rosetta check`` finds it."""

from __future__ import annotations

import ssl

from proxy.settings import ConfigError, UpstreamTlsSettings


def client_context(tls: UpstreamTlsSettings, where: str) -> ssl.SSLContext:
    """The context for connections to an upstream configured with ``tls`` (at ``where``)."""
    try:
        context = ssl.create_default_context(cafile=tls.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{where}.ca_file: cannot load {tls.ca_file}: {_reason(exc)}") from None
    if tls.cert_file is not None:

        def encrypted() -> bytes:  # OpenSSL would otherwise ask for a pass phrase on the tty
            raise ConfigError(
                f"{where}.key_file: {tls.key_file} is encrypted; give an unencrypted key"
            )

        try:
            context.load_cert_chain(tls.cert_file, tls.key_file, password=encrypted)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"{where}.cert_file: cannot load {tls.cert_file} with {tls.key_file}: "
                f"{_reason(exc)}"
            ) from None
    return context


def _reason(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or "not a PEM certificate or key"
    return exc.strerror or type(exc).__name__
