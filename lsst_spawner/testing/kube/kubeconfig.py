"""Kubeconfig files pointing at the emulator, and its TLS certificate.

kubectl (client-go's clientcmd) sends a kubeconfig's credentials only over TLS:
against a plain-HTTP server it is ``system:anonymous``. So an emulator started
with ``tls=True`` serves HTTPS with a self-signed certificate for its loopback
address, and the kubeconfig carries that certificate as its CA.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import ssl
import tempfile
from pathlib import Path
from typing import Any

import yaml

from .authn import ADMIN_TOKEN

__all__ = ["kubeconfig_dict", "self_signed_certificate", "server_ssl_context", "write_kubeconfig"]


def kubeconfig_dict(
    url: str,
    namespace: str = "default",
    name: str = "lsst-emulator",
    token: str = ADMIN_TOKEN,
    ca_pem: bytes | None = None,
) -> dict[str, Any]:
    """A kubeconfig whose user authenticates with bearer ``token`` (the administrator's)."""
    cluster: dict[str, Any] = {"server": url}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode("ascii")
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}
        ],
        "current-context": name,
        "preferences": {},
    }


def write_kubeconfig(
    path: str | os.PathLike[str],
    url: str,
    namespace: str = "default",
    token: str = ADMIN_TOKEN,
    ca_pem: bytes | None = None,
) -> Path:
    """Write a kubeconfig for ``url`` to ``path`` (mode 0600) and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    config = kubeconfig_dict(url, namespace, token=token, ca_pem=ca_pem)
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(target)
    return target


def self_signed_certificate(host: str) -> tuple[bytes, bytes]:
    """``(certificate, key)`` PEM for ``host`` (an IP address), valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lsst-spawner kube emulator")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def server_ssl_context(host: str) -> tuple[ssl.SSLContext, bytes]:
    """A server TLS context with a new self-signed certificate for ``host``, and the certificate."""
    certificate, key = self_signed_certificate(host)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as tmp:  # load_cert_chain reads files only
        cert_file, key_file = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert_file.write_bytes(certificate)
        key_file.write_bytes(key)
        context.load_cert_chain(cert_file, key_file)
    return context, certificate
