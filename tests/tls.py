"""Test certificates for ``wss://`` and ``https://``: a CA made per run.

:func:`make_certificates` writes a new certificate authority and a server
certificate it signed for ``127.0.0.1`` and ``localhost``, as a user would
make with ``openssl`` (README, "TLS"): clients trust the CA file
(``NODE_EXTRA_CA_CERTS``, ``ssl.create_default_context(cafile=...)``), the
server gets the certificate chain and its key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization


__all__ = ["Certificates", "make_certificates"]


@dataclass(frozen=True)
class Certificates:
    """A test certificate authority and a server certificate it signed."""

    ca: Path  #: the CA certificate (PEM), what clients trust
    cert: Path  #: the server's certificate chain (PEM)
    key: Path  #: the server's private key (PEM, unencrypted)
    encrypted_key: Path  #: the same key encrypted with :attr:`password`
    password: str = "correct horse battery staple"


def make_certificates(folder: Path) -> Certificates:
    """Write a new CA and a server certificate into ``folder``."""
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    files = Certificates(
        folder / "ca.pem",
        folder / "cert.pem",
        folder / "key.pem",
        folder / "key-encrypted.pem",
    )
    ca.cert_pem.write_to_path(str(files.ca))
    for i, blob in enumerate(issued.cert_chain_pems):
        blob.write_to_path(str(files.cert), append=i > 0)
    issued.private_key_pem.write_to_path(str(files.key))
    key = serialization.load_pem_private_key(issued.private_key_pem.bytes(), None)
    files.encrypted_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(files.password.encode()),
        )
    )
    return files
