"""A Connector's identity in the dataspace: its DID, participant id and BPN, fixed for its whole
life by its namespace, its name and the installation's public host (pure)."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from connector_operator.edc.settings import EdcSettings


@dataclass(frozen=True)
class Identity:
    did: str
    participant_id: str
    bpn: str
    public_base: str  # https://<host>/connectors/<name>: the root of its public routes


def bpn_of(namespace: str, name: str) -> str:
    """A Business Partner Number (legal entity) derived from where the Connector lives.

    Derived, not given: the platform assigns each Connector one, the spec (the platform's
    payload) has no field for it, and a value derived from namespace and name survives what a
    stored one would not: a Connector deleted and applied again from Git keeps its BPN.
    BPNL + 12 characters, as Catena-X writes them.
    """
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    return "BPNL" + base64.b32encode(digest).decode()[:12]


def identity_of(namespace: str, name: str, settings: EdcSettings) -> Identity:
    host = settings.public_host
    did_host = host.replace(":", "%3A")  # did:web encodes a port this way
    did = f"did:web:{did_host}:connectors:{name}"
    return Identity(
        did=did,
        participant_id=did,
        bpn=bpn_of(namespace, name),
        public_base=f"https://{host}/connectors/{name}",
    )


def schema_of(namespace: str, name: str) -> str:
    """The Connector's PostgreSQL schema (or database): a lower-case identifier of at most 53
    characters, unique per namespace and name."""
    tail = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:8]
    return f"edc_{re.sub(r'[^a-z0-9]', '_', name)[:40]}_{tail}"
