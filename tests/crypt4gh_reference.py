#!/usr/bin/env python3
"""An independent Crypt4GH implementation (samtools/hts-specs crypt4gh.tex, method 0) for checking impact's,
on Debian's python3-cryptography and hashlib only.

  crypt4gh_reference.py encrypt RECIPIENT_PUBKEY_FILE [EDIT,LIST,...] < plain > file.c4gh
  crypt4gh_reference.py decrypt PRIVATE_KEY_FILE < file.c4gh > plain   (c4gh-v1 key, KDF none)
"""
import base64
import hashlib
import os
import struct
import sys

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives import serialization

SEG = 65536
RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def pem_bytes(path):
    lines = [l.strip() for l in open(path).read().splitlines() if l.strip() and not l.startswith('-----')]
    return base64.b64decode(''.join(lines))


def shared(secret, peer_pub, reader_pub, writer_pub):
    dh = X25519PrivateKey.from_private_bytes(secret).exchange(X25519PublicKey.from_public_bytes(peer_pub))
    return hashlib.blake2b(dh + reader_pub + writer_pub, digest_size=64).digest()[:32]


def encrypt(pub_path, edit):
    reader = pem_bytes(pub_path)
    assert len(reader) == 32
    writer = X25519PrivateKey.generate()
    writer_sk = writer.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                     serialization.NoEncryption())
    writer_pk = writer.public_key().public_bytes(*RAW)
    key = shared(writer_sk, reader, reader, writer_pk)
    data_key = os.urandom(32)
    packets = [struct.pack('<II', 0, 0) + data_key]
    if edit is not None:
        packets.append(struct.pack('<II', 1, len(edit)) + b''.join(struct.pack('<Q', v) for v in edit))
    out = sys.stdout.buffer
    out.write(b'crypt4gh' + struct.pack('<II', 1, len(packets)))
    for p in packets:
        nonce = os.urandom(12)
        sealed = ChaCha20Poly1305(key).encrypt(nonce, p, None)
        out.write(struct.pack('<II', 4 + 4 + 32 + 12 + len(sealed), 0) + writer_pk + nonce + sealed)
    aead = ChaCha20Poly1305(data_key)
    src = sys.stdin.buffer
    while True:
        chunk = src.read(SEG)
        if not chunk:
            break
        nonce = os.urandom(12)
        out.write(nonce + aead.encrypt(nonce, chunk, None))


def decrypt(sec_path):
    blob = pem_bytes(sec_path)
    assert blob.startswith(b'c4gh-v1')
    pos = 7
    fields = []
    for _ in range(3):
        n = struct.unpack('>H', blob[pos:pos + 2])[0]
        fields.append(blob[pos + 2:pos + 2 + n])
        pos += 2 + n
    assert fields[0] == b'none' and fields[1] == b'none', 'only unprotected keys'
    secret = fields[2]
    pub = X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(*RAW)
    data = sys.stdin.buffer.read()
    assert data[:8] == b'crypt4gh' and struct.unpack('<I', data[8:12])[0] == 1
    count = struct.unpack('<I', data[12:16])[0]
    pos = 16
    keys, edit = [], None
    for _ in range(count):
        length, method = struct.unpack('<II', data[pos:pos + 8])
        writer = data[pos + 8:pos + 40]
        nonce = data[pos + 40:pos + 52]
        body = data[pos + 52:pos + length]
        pos += length
        try:
            plain = ChaCha20Poly1305(shared(secret, writer, pub, writer)).decrypt(nonce, body, None)
        except Exception:
            continue
        kind = struct.unpack('<I', plain[:4])[0]
        if kind == 0:
            keys.append(plain[8:40])
        elif kind == 1:
            n = struct.unpack('<I', plain[4:8])[0]
            edit = [struct.unpack('<Q', plain[8 + 8 * i:16 + 8 * i])[0] for i in range(n)]
    if not keys:
        sys.exit('no packet for this key')
    plain = bytearray()
    while pos < len(data):
        seg = data[pos:pos + SEG + 28]
        pos += len(seg)
        for k in keys:
            try:
                plain += ChaCha20Poly1305(k).decrypt(seg[:12], seg[12:], None)
                break
            except Exception:
                pass
        else:
            sys.exit('segment failed authentication')
    if edit:
        out, at = bytearray(), 0
        for i, v in enumerate(edit):
            if i % 2 == 0:
                at += v
            else:
                out += plain[at:at + v]
                at += v
        if len(edit) % 2 == 1:
            out += plain[at:]
        plain = out
    sys.stdout.buffer.write(plain)


if __name__ == '__main__':
    if sys.argv[1] == 'encrypt':
        encrypt(sys.argv[2], [int(v) for v in sys.argv[3].split(',')] if len(sys.argv) > 3 else None)
    elif sys.argv[1] == 'decrypt':
        decrypt(sys.argv[2])
    else:
        sys.exit(__doc__)
