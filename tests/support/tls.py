"""Certificates for TLS tests, made with ``cryptography``: a CA, and certificates it signs for a broker or a
client (valid, expired, or for another host), written as the PEM files Kafka and the worker read."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = datetime.timedelta(days=1)


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self, password: str | None = None) -> bytes:
        """The key as PKCS#8 PEM (what Kafka's PEM key stores take), encrypted when ``password`` is given."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
        )
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


class CertificateAuthority:
    """A self-signed CA that issues leaf certificates."""

    def __init__(self, common_name: str) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now() - DAY)
            .not_valid_after(now() + 30 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        self.root = Issued(cert, key)

    def issue(
        self, common_name: str, *, hosts: tuple[str, ...] = (), client: bool = False,
        not_before: datetime.datetime | None = None, not_after: datetime.datetime | None = None,
    ) -> Issued:
        """A leaf certificate: for a server (``hosts``: DNS names and IP addresses) or a client."""
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.root.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now() - DAY)
            .not_valid_after(not_after or now() + 30 * DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.root.key.public_key()),
                           critical=False)
        )
        if hosts:
            names: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return Issued(builder.sign(self.root.key, hashes.SHA256()), key)

    def write_ca(self, path: Path) -> Path:
        path.write_bytes(self.root.cert_pem())
        return path


def write_key_store(issued: Issued, ca: CertificateAuthority, path: Path) -> Path:
    """A PEM key store as Kafka reads it (``ssl.keystore.type=PEM``): the key, then the certificate chain."""
    path.write_bytes(issued.key_pem() + issued.cert_pem() + ca.root.cert_pem())
    return path


def write_pair(issued: Issued, directory: Path, password: str | None = None) -> tuple[Path, Path]:
    """``tls.crt`` and ``tls.key`` (the keys of a kubernetes.io/tls Secret) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "tls.crt", directory / "tls.key"
    cert.write_bytes(issued.cert_pem())
    key.write_bytes(issued.key_pem(password))
    key.chmod(0o600)
    return cert, key


KEY_PASSWORD = "tls-key-passphrase-71c2"  # the client key's password in the tests: must never be printed


class TlsBroker:
    """A one-node broker with a TLS listener of each kind the tests need, and the files a worker mounts.

    Listeners: ``SSL`` (server certificate only), ``SASL_SSL`` (SCRAM users as on every test broker),
    ``MTLS`` (a client certificate signed by the client CA is required), ``EXPIRED`` (a server
    certificate past its end), ``WRONG_HOST`` (a certificate for another host name); PLAINTEXT too, for
    setting topics up. ``ca``/``other_ca`` are CA bundles; ``client``/``client_encrypted``/``client_expired``/
    ``client_unknown`` are (tls.crt, tls.key) pairs; ``key_password_file`` opens ``client_encrypted``'s key.
    """

    KINDS = {"SSL": "SSL", "SASL_SSL": "SASL_SSL", "MTLS": "SSL", "EXPIRED": "SSL", "WRONG_HOST": "SSL"}

    def __init__(self, directory: Path) -> None:
        from tests.support.broker import Listener, LocalBroker, free_port

        self.dir = directory
        ca, client_ca, other = (CertificateAuthority(n) for n in ("kafka CA", "client CA", "other CA"))
        self.ca, self.other_ca = ca.write_ca(directory / "ca.crt"), other.write_ca(directory / "other-ca.crt")
        client_ca.write_ca(directory / "client-ca.crt")
        loopback = ("127.0.0.1", "localhost")
        stores = {
            "good": write_key_store(ca.issue("broker", hosts=loopback), ca, directory / "broker.pem"),
            "EXPIRED": write_key_store(ca.issue("broker", hosts=loopback, not_before=now() - 30 * DAY,
                                                not_after=now() - DAY), ca, directory / "expired.pem"),
            "WRONG_HOST": write_key_store(ca.issue("broker", hosts=("kafka.example.com",)), ca,
                                          directory / "wrong-host.pem"),
        }
        self.client = write_pair(client_ca.issue("worker", client=True), directory / "client")
        self.client_encrypted = write_pair(client_ca.issue("worker", client=True), directory / "client-encrypted",
                                           password=KEY_PASSWORD)
        self.client_expired = write_pair(client_ca.issue("worker", client=True, not_before=now() - 30 * DAY,
                                                         not_after=now() - DAY), directory / "client-expired")
        self.client_unknown = write_pair(other.issue("worker", client=True), directory / "client-unknown")
        self.key_password_file = directory / "key-password"
        self.key_password_file.write_text(KEY_PASSWORD + "\n", encoding="utf-8")
        self.listeners = {name: Listener(name, protocol, free_port()) for name, protocol in self.KINDS.items()}
        lines = []
        for name in self.listeners:
            prefix = f"listener.name.{name.lower()}.ssl"
            lines += [f"{prefix}.keystore.type=PEM", f"{prefix}.keystore.location={stores.get(name, stores['good'])}"]
        lines += ["listener.name.mtls.ssl.client.auth=required", "listener.name.mtls.ssl.truststore.type=PEM",
                  f"listener.name.mtls.ssl.truststore.location={directory / 'client-ca.crt'}"]
        self.broker = LocalBroker(sasl=False, listeners=list(self.listeners.values()),
                                  properties="\n".join(lines) + "\n")

    def bootstrap(self, listener: str) -> str:
        return self.listeners[listener].bootstrap

    def start(self) -> TlsBroker:
        self.broker.start()
        return self

    def stop(self) -> None:
        self.broker.stop()
