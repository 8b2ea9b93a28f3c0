"""The keys a Connector is born with: API keys and the token signer's key pair, generated once
and kept in the Connector's `-keys` Secret for its whole life (pure: randomness and crypto,
no I/O)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from connector_operator.edc.manifests import (
    CATALOG_KEY,
    GENERATED,
    MANAGEMENT_KEY,
    PROXY_KEY,
    SIGNER_KEY,
    VERIFIER_KEY,
)


def _key_pair() -> tuple[str, str]:
    """An EC P-256 key pair as PEM (PKCS#8 private key, SubjectPublicKeyInfo public key): the
    EDC token signer signs the data plane's access tokens with it (ES256)."""
    # Imported when first needed: the library's bindings cost 8 MiB, which an operator of the
    # generic profile never uses.
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

    private = ec.generate_private_key(ec.SECP256R1())
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


def complete(held: Mapping[str, str]) -> dict[str, str]:
    """The generated keys: those already held, kept as they are, and any missing made now (a
    key pair is made whole again only when either half is missing)."""
    keys = {k: held[k] for k in GENERATED if held.get(k)}
    for name in (MANAGEMENT_KEY, CATALOG_KEY, PROXY_KEY):
        keys.setdefault(name, secrets.token_urlsafe(32))
    if SIGNER_KEY not in keys or VERIFIER_KEY not in keys:
        keys[SIGNER_KEY], keys[VERIFIER_KEY] = _key_pair()
    return keys
