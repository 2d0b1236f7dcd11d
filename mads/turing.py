"""Turing, the secrets keeper: values encrypted with AES-256-GCM, handed only in-process to granted MADs."""
from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlite_utils import Migrations

from mads.kernel import MAD, Secret, ToolError, tool

migrations = Migrations("turing")

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_MAD = re.compile(r"^[A-Za-z][\w-]{0,63}$")
_CHECK = b"turing master key check"
ACTOR = "human"


@migrations()
def m001_create_tables(db: Any) -> None:
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
    db.execute("""CREATE TABLE secrets (
        name TEXT PRIMARY KEY, version INTEGER NOT NULL, nonce BLOB NOT NULL, ciphertext BLOB NOT NULL,
        created TEXT NOT NULL, updated TEXT NOT NULL)""")
    db.execute("CREATE TABLE grants (name TEXT NOT NULL, mad TEXT NOT NULL, created TEXT NOT NULL, "
               "PRIMARY KEY (name, mad))")
    db.execute("""CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        name TEXT, allowed INTEGER NOT NULL, detail TEXT NOT NULL DEFAULT '')""")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def decode_key(text: str) -> bytes | None:
    """32 raw bytes from hex or base64 (standard or URL-safe, padding optional); None for anything else."""
    text = text.strip()
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        return bytes.fromhex(text)
    if re.fullmatch(r"[A-Za-z0-9+/_-]{43}=?", text):
        padded = text.replace("-", "+").replace("_", "/").rstrip("=") + "="
        try:
            raw = base64.b64decode(padded, validate=True)
        except (binascii.Error, ValueError):
            return None
        return raw if len(raw) == 32 else None
    return None


class Turing(MAD):
    """Keeps secrets encrypted (AES-256-GCM), grants them to MADs one by one, and audits every use."""

    migrations = migrations

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._aead: AESGCM | None = None
        self._locked = "the secrets keeper has not started"

    # the master key ----------------------------------------------------------
    async def on_start(self) -> None:
        db = self.ctx.state
        try:
            self._aead = AESGCM(self._master_key())
            self._locked = ""
            self._check_key()
        except ToolError as exc:
            self._aead = None
            self._locked = str(exc)
            self.ctx.log.error("Turing is locked: %s", exc)
        if self._aead is not None:
            for row in db.query("SELECT name, nonce, ciphertext FROM secrets"):
                self.ctx.redact(self._decrypt(row))
        self.ctx.provide("secrets", self)

    def _meta(self, key: str) -> bytes | None:
        rows = list(self.ctx.state.query("SELECT value FROM meta WHERE key = ?", [key]))
        return bytes(rows[0]["value"]) if rows else None

    def _set_meta(self, key: str, value: bytes) -> None:
        self.ctx.state.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value])

    def _master_key(self) -> bytes:
        """MAD_MASTER_KEY (a 32-byte key in hex or base64, or a passphrase), else MAD_HOME/master.key."""
        given = self.ctx.credentials().master_key
        if given:
            self.ctx.redact(given)
            raw = decode_key(given)
            if raw is not None:
                return raw
            salt = self._meta("kdf_salt")
            if salt is None:
                salt = os.urandom(16)
                self._set_meta("kdf_salt", salt)
            return Scrypt(salt=salt, length=32, n=2**14, r=8, p=1).derive(given.encode("utf-8"))
        path = Path(self.ctx.home) / "master.key"
        if path.exists():
            text = path.read_text(encoding="ascii", errors="replace")
            self.ctx.redact(text.strip())
            raw = decode_key(text)
            if raw is None:
                raise ToolError(f"{path} does not hold a 32-byte key in hex or base64")
            return raw
        if self._meta("key_check") is not None:
            raise ToolError(f"secrets are stored but neither MAD_MASTER_KEY nor {path} is there to open them")
        return self._generate_key_file(path)

    def _generate_key_file(self, path: Path) -> bytes:
        raw = os.urandom(32)
        text = base64.urlsafe_b64encode(raw).decode("ascii")
        self.ctx.redact(text)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(text + "\n")
        self.ctx.log.warning("generated a master key in %s; keep it safe", path)
        return raw

    def _check_key(self) -> None:
        """Prove the master key is the one the stored secrets were sealed with."""
        assert self._aead is not None
        check = self._meta("key_check")
        if check is None:
            nonce = os.urandom(12)
            self._set_meta("key_check", nonce + self._aead.encrypt(nonce, _CHECK, b"key_check"))
            return
        try:
            self._aead.decrypt(check[:12], check[12:], b"key_check")
        except InvalidTag:
            raise ToolError("the master key does not open the stored secrets (wrong MAD_MASTER_KEY "
                            "or master.key)") from None

    # sealing -------------------------------------------------------------------
    def _cipher(self) -> AESGCM:
        if self._aead is None:
            raise ToolError(f"Turing is locked: {self._locked}")
        return self._aead

    def _encrypt(self, name: str, value: str) -> tuple[bytes, bytes]:
        nonce = os.urandom(12)
        return nonce, self._cipher().encrypt(nonce, value.encode("utf-8"), name.encode("utf-8"))

    def _decrypt(self, row: dict[str, Any]) -> str:
        try:
            plain = self._cipher().decrypt(bytes(row["nonce"]), bytes(row["ciphertext"]), row["name"].encode("utf-8"))
        except InvalidTag:
            raise ToolError(f"secret {row['name']} cannot be decrypted (tampered or sealed with another key)") from None
        return plain.decode("utf-8")

    # records -------------------------------------------------------------------
    def _audit(self, action: str, name: str | None, *, actor: str = ACTOR, allowed: bool = True,
               detail: str = "") -> None:
        self.ctx.state.execute("INSERT INTO audit (time, actor, action, name, allowed, detail) VALUES (?, ?, ?, ?, ?, ?)",
                               [_now(), actor, action, name, int(allowed), detail])

    @staticmethod
    def _name(name: str) -> str:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ToolError(f"not a secret name: {name!r} (letters, digits, _ . - only)")
        return name

    @staticmethod
    def _mad(mad: str) -> str:
        if not isinstance(mad, str) or not _MAD.match(mad.lstrip("@")):
            raise ToolError(f"not a MAD name: {mad!r}")
        return mad.lstrip("@").lower()

    def _row(self, name: str) -> dict[str, Any]:
        rows = list(self.ctx.state.query("SELECT * FROM secrets WHERE name = ?", [self._name(name)]))
        if not rows:
            raise ToolError(f"no secret named {name}")
        return rows[0]

    def _grants(self, name: str) -> list[str]:
        return [r["mad"] for r in self.ctx.state.query("SELECT mad FROM grants WHERE name = ? ORDER BY mad", [name])]

    def _metadata(self, name: str) -> dict[str, Any]:
        row = self._row(name)
        return {"name": row["name"], "version": row["version"], "created": row["created"], "updated": row["updated"]}

    def _seal(self, name: str, value: str, action: str) -> dict[str, Any]:
        """Encrypt and store a value as the secret's next version; audited, never returned."""
        self.ctx.redact(value)
        nonce, sealed = self._encrypt(name, value)
        now = _now()
        db = self.ctx.state
        with db.atomic():
            rows = list(db.query("SELECT version FROM secrets WHERE name = ?", [name]))
            if rows:
                version = rows[0]["version"] + 1
                db.execute("UPDATE secrets SET version = ?, nonce = ?, ciphertext = ?, updated = ? WHERE name = ?",
                           [version, nonce, sealed, now, name])
            else:
                version = 1
                db.execute("INSERT INTO secrets (name, version, nonce, ciphertext, created, updated) "
                           "VALUES (?, ?, ?, ?, ?, ?)", [name, version, nonce, sealed, now, now])
            self._audit(action, name, detail=f"version {version}")
        return self._metadata(name)

    # the in-process service ----------------------------------------------------
    async def reveal(self, name: str, mad: str) -> str:
        """The secret's value for a MAD holding a grant for it; every read, allowed or refused, is audited."""
        name = self._name(name)
        mad = self._mad(mad)
        if mad not in self._grants(name):
            self._audit("read", name, actor=mad, allowed=False, detail="no grant")
            self.ctx.log.warning("%s was refused secret %s: no grant", mad, name)
            raise ToolError(f"{mad} has no grant for secret {name}")
        value = self._decrypt(self._row(name))
        self.ctx.redact(value)
        self._audit("read", name, actor=mad)
        return value

    # tools -----------------------------------------------------------------------
    @tool
    async def set_secret(self, name: str, value: Secret) -> dict[str, Any]:
        """Store a secret's value, encrypted; returns its metadata, never the value."""
        name = self._name(name)
        if len(value) < 4:
            raise ToolError("a secret value needs at least 4 characters")
        return self._seal(name, str(value), "set")

    @tool
    async def list_secrets(self) -> list[dict[str, Any]]:
        """Every secret's name, version, dates and grants (metadata only)."""
        rows = self.ctx.state.query("SELECT name, version, created, updated FROM secrets ORDER BY name")
        return [{**row, "grants": self._grants(row["name"])} for row in rows]

    @tool
    async def rotate_secret(self, name: str) -> dict[str, Any]:
        """Replace a secret's value with a new random one; returns its metadata, never the value."""
        self._row(name)
        return self._seal(name, secrets.token_urlsafe(32), "rotate")

    @tool
    async def delete_secret(self, name: str) -> dict[str, Any]:
        """Delete a secret and its grants."""
        self._row(name)
        db = self.ctx.state
        with db.atomic():
            db.execute("DELETE FROM secrets WHERE name = ?", [name])
            db.execute("DELETE FROM grants WHERE name = ?", [name])
            self._audit("delete", name)
        return {"name": name, "deleted": True}

    @tool
    async def grant(self, name: str, mad: str) -> dict[str, Any]:
        """Let a MAD read a secret (in-process, through ctx.secret)."""
        self._row(name)
        mad = self._mad(mad)
        db = self.ctx.state
        with db.atomic():
            db.execute("INSERT OR IGNORE INTO grants (name, mad, created) VALUES (?, ?, ?)", [name, mad, _now()])
            self._audit("grant", name, detail=f"to {mad}")
        return {"name": name, "mad": mad, "grants": self._grants(name)}

    @tool
    async def revoke(self, name: str, mad: str) -> dict[str, Any]:
        """Take back a MAD's grant for a secret."""
        self._row(name)
        mad = self._mad(mad)
        if mad not in self._grants(name):
            raise ToolError(f"{mad} has no grant for secret {name}")
        db = self.ctx.state
        with db.atomic():
            db.execute("DELETE FROM grants WHERE name = ? AND mad = ?", [name, mad])
            self._audit("revoke", name, detail=f"from {mad}")
        return {"name": name, "mad": mad, "grants": self._grants(name)}

    @tool
    async def audit(self, limit: int = 50) -> list[dict[str, Any]]:
        """The audit log, newest first: time, actor, action, name, allowed, detail."""
        if limit < 1:
            raise ToolError("limit must be at least 1")
        rows = self.ctx.state.query(
            "SELECT time, actor, action, name, allowed, detail FROM audit ORDER BY id DESC LIMIT ?", [min(limit, 10000)])
        return [{**row, "allowed": bool(row["allowed"])} for row in rows]
