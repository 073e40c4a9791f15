"""The CRX3 package: parsed here independently of the build script, signature and id checked."""

from __future__ import annotations

import hashlib
import io
import re
import stat
import struct
import zipfile

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _fields(data: bytes) -> list[tuple[int, bytes]]:
    """Length-delimited fields of a protobuf message (the only wire type crx3.proto uses)."""
    out, pos = [], 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        assert tag & 7 == 2, f"unexpected wire type {tag & 7}"
        length, pos = _varint(data, pos)
        out.append((tag >> 3, data[pos : pos + length]))
        pos += length
    return out


def parse_crx3(blob: bytes) -> dict:
    assert blob[:4] == b"Cr24", "not a CRX file"
    version, header_size = struct.unpack("<II", blob[4:12])
    assert version == 3
    header = blob[12 : 12 + header_size]
    archive = blob[12 + header_size :]
    proofs, signed_data = [], None
    for number, value in _fields(header):
        if number == 2:  # sha256_with_rsa
            proof = dict(_fields(value))
            proofs.append((proof[1], proof[2]))
        elif number == 10000:
            signed_data = value
    crx_id = dict(_fields(signed_data))[1]
    return {"proofs": proofs, "signed_data": signed_data, "crx_id": crx_id, "archive": archive}


def verify(parsed: dict) -> None:
    message = (
        b"CRX3 SignedData\x00"
        + struct.pack("<I", len(parsed["signed_data"]))
        + parsed["signed_data"]
        + parsed["archive"]
    )
    for public_der, signature in parsed["proofs"]:
        key = serialization.load_der_public_key(public_der)
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())


def chrome_id(public_der: bytes) -> str:
    return "".join("abcdefghijklmnop"[int(c, 16)] for c in hashlib.sha256(public_der).hexdigest()[:32])


@pytest.mark.parametrize("which", ["prod", "dev"])
def test_crx3_signature_and_id(request, which):
    result = request.getfixturevalue(which)
    parsed = parse_crx3(result.crx_path.read_bytes())
    assert len(parsed["proofs"]) == 1
    verify(parsed)
    public_der, _ = parsed["proofs"][0]
    # the id Chrome derives: the header's crx_id is the first 16 bytes of SHA-256 of the key
    assert parsed["crx_id"] == hashlib.sha256(public_der).digest()[:16]
    assert chrome_id(public_der) == result.extension_id
    assert re.fullmatch(r"[a-p]{32}", result.extension_id)
    # the payload is exactly the Web Store zip
    assert parsed["archive"] == result.zip_path.read_bytes()
    with zipfile.ZipFile(io.BytesIO(parsed["archive"])) as archive:
        assert "manifest.json" in archive.namelist()


def test_dev_manifest_key_gives_the_same_id(dev):
    import base64
    import json

    manifest = json.loads((dev.directory / "manifest.json").read_text())
    assert chrome_id(base64.b64decode(manifest["key"])) == dev.extension_id


def test_a_tampered_package_fails_verification(prod):
    blob = bytearray(prod.crx_path.read_bytes())
    blob[-10] ^= 0xFF  # inside the zip's central directory
    with pytest.raises(InvalidSignature):
        verify(parse_crx3(bytes(blob)))


def test_key_is_created_once_private_and_reused(build_module, tmp_path):
    first = build_module.build("prod", out=tmp_path / "a", key_dir=tmp_path / "keys")
    key_file = tmp_path / "keys" / build_module.KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    second = build_module.build("prod", out=tmp_path / "b", key_dir=tmp_path / "keys")
    assert first.extension_id == second.extension_id
    other = build_module.build("prod", out=tmp_path / "c", key_dir=tmp_path / "other-keys")
    assert other.extension_id != first.extension_id
