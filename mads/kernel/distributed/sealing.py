"""Values that must not travel in clear over Redis (secrets), sealed to the processes that may open them.

Each process has an X25519 key pair for its life and publishes the public half in the
directory. A value is encrypted once under a random key (AES-256-GCM), and that key is
wrapped for each recipient process (X25519 + HKDF + AES-GCM), as `age` does. Redis and the
journal only ever see the sealed form.
"""
from __future__ import annotations

import base64
import json
import os
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import MadError

INFO = b"mad sealed value v1"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def _wrapping_key(shared: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO).derive(shared)


class Keypair:
    """This process's key pair; only its public half leaves the process."""

    def __init__(self) -> None:
        self._private = X25519PrivateKey.generate()
        self.public = _b64(self._private.public_key().public_bytes(serialization.Encoding.Raw,
                                                                   serialization.PublicFormat.Raw))

    def open(self, sealed: dict[str, Any], node: str) -> str:
        """The value sealed for this process (as `node`); MadError when it was sealed for others only."""
        wrapped = sealed.get("keys", {}).get(node)
        if wrapped is None:
            raise MadError("a sealed value reached a process it was not sealed for")
        ephemeral = X25519PublicKey.from_public_bytes(_unb64(wrapped["epk"]))
        wrapping = _wrapping_key(self._private.exchange(ephemeral))
        key = AESGCM(wrapping).decrypt(_unb64(wrapped["nonce"]), _unb64(wrapped["key"]), None)
        return AESGCM(key).decrypt(_unb64(sealed["nonce"]), _unb64(sealed["data"]), None).decode("utf-8")


def seal(value: str, recipients: dict[str, str]) -> dict[str, Any]:
    """The value encrypted so that only these processes (node -> public key) can open it."""
    if not recipients:
        raise MadError("no process to seal the value for")
    key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(12)
    sealed: dict[str, Any] = {"sealed": 1, "nonce": _b64(nonce),
                              "data": _b64(AESGCM(key).encrypt(nonce, value.encode("utf-8"), None)), "keys": {}}
    for node, public in recipients.items():
        ephemeral = X25519PrivateKey.generate()
        wrapping = _wrapping_key(ephemeral.exchange(X25519PublicKey.from_public_bytes(_unb64(public))))
        wrap_nonce = os.urandom(12)
        sealed["keys"][node] = {
            "epk": _b64(ephemeral.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)),
            "nonce": _b64(wrap_nonce), "key": _b64(AESGCM(wrapping).encrypt(wrap_nonce, key, None))}
    return sealed


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and value.get("sealed") == 1


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
