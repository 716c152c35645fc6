"""Certificates for TLS tests, from a private CA (trustme): PEM files on disk for Rosetta's
config, and SSL contexts for the test's own servers and clients."""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization


def pem_files(authority: trustme.CA, directory: Path, name: str) -> dict[str, str]:
    """PEM files of a certificate for ``name`` from ``authority``: ``ca`` (the CA's own),
    ``cert``, ``key``, ``encrypted_key`` (the key under a pass phrase) and ``junk`` (no PEM)."""
    issued = authority.issue_cert(name)
    files = {
        "ca": directory / "ca.pem",
        "cert": directory / f"{name}.pem",
        "key": directory / f"{name}.key",
        "encrypted_key": directory / f"{name}.encrypted.key",
        "junk": directory / "junk.pem",
    }
    authority.cert_pem.write_to_path(str(files["ca"]))
    issued.cert_chain_pems[0].write_to_path(str(files["cert"]))
    issued.private_key_pem.write_to_path(str(files["key"]))
    key = serialization.load_pem_private_key(issued.private_key_pem.bytes(), None)
    files["encrypted_key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pass phrase"),
        )
    )
    files["junk"].write_text("not a certificate\n")
    return {role: str(path) for role, path in files.items()}


def trusting(authority: trustme.CA) -> ssl.SSLContext:
    """A client context that trusts ``authority`` only."""
    context = ssl.create_default_context()
    authority.configure_trust(context)
    return context
