"""How the worker reaches Kafka: brokers, security, the deployment and its topics, fetch sizes."""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import Field, model_validator

from worker.core.config.base import TOPIC_PATTERN, Model, SecretRef, reject_inline_secrets
from worker.core.config.deployment import DEPLOYMENT_PATTERN, Deployment, Store


class SecurityProtocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


TLS_FIELDS = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_key_password_env", "ssl_key_password_file")


class SaslMechanism(StrEnum):
    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


class KafkaSettings(Model):
    """How the worker reaches Kafka."""

    bootstrap_servers: str = Field(
        default="localhost:9092",
        description="Comma-separated host:port list. The env var KAFKA_BOOTSTRAP_SERVERS overrides it.",
    )
    group_id: str = Field(
        default="gorgias-worker", min_length=1,
        description="Prefix of each destination's consumer group (`<group_id>.<name>`).",
    )
    deployment: str | None = Field(
        default=None,
        pattern=DEPLOYMENT_PATTERN,
        description="Name of this deployment on the cluster; default `group_id`. Its store topics default to "
        "`<deployment>.<store>` (control, intents) and every key it writes to them starts with `<deployment>/`, "
        "so deployments sharing a cluster never see each other's entries.",
    )
    client_id: str = Field(default="gorgias-worker", min_length=1,
                           description="The Kafka client id (broker logs, quotas).")
    security_protocol: SecurityProtocol = Field(
        default=SecurityProtocol.PLAINTEXT, description="PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or SASL_SSL.",
    )
    sasl_mechanism: SaslMechanism | None = Field(
        default=None, description="With SASL_*: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.",
    )
    sasl_username: str | None = Field(default=None, description="With SASL_*: the user.")
    sasl_password_env: str | None = Field(default=None, description="Environment variable holding its password.")
    sasl_password_file: str | None = Field(default=None, description="File holding its password.")
    ssl_cafile: str | None = Field(
        default=None, description="CA bundle (PEM) to verify the brokers; default: the system's trusted CAs.",
    )
    ssl_certfile: str | None = Field(
        default=None, description="Client certificate (PEM) for mutual TLS, e.g. a mounted tls.crt.",
    )
    ssl_keyfile: str | None = Field(
        default=None, description="Its private key (PEM), e.g. a mounted tls.key; default: in ssl_certfile.",
    )
    ssl_key_password_env: str | None = Field(
        default=None, description="Environment variable holding the password of an encrypted ssl_keyfile.",
    )
    ssl_key_password_file: str | None = Field(
        default=None, description="File holding the password of an encrypted ssl_keyfile.",
    )
    control_topic: str | None = Field(
        default=None,
        pattern=TOPIC_PATTERN,
        description="Compacted topic carrying activate/pause commands to every replica; default "
        "`<deployment>.control`.",
    )
    destinations_topic: str | None = Field(
        default=None,
        pattern=TOPIC_PATTERN,
        description="Compacted topic holding the destinations saved at runtime (the REST API, `gorgias-worker "
        "destinations apply`), read by every replica; default `<deployment>.destinations`.",
    )
    credentials_topic: str | None = Field(
        default=None,
        pattern=TOPIC_PATTERN,
        description="Compacted topic holding the credentials saved at runtime (secrets encrypted) and the OAuth "
        "tokens the replicas share; default `<deployment>.credentials`.",
    )
    demand_topic: str | None = Field(
        default=None,
        pattern=TOPIC_PATTERN,
        description="Compacted topic where every replica publishes, about once a second, the calls it has waiting "
        "per Gorgias account: replicas on one account divide its budget by what each has waiting; default "
        "`<deployment>.demand`.",
    )
    replication_factor: int | None = Field(
        default=None, ge=1, le=32,
        description="Replication factor of the topics the worker creates (responses, dead letters, intents, "
        "control and the stores); default: the cluster's `default.replication.factor`. Existing topics are "
        "never changed.",
    )
    min_insync_replicas: int | None = Field(
        default=None, ge=1, le=32,
        description="`min.insync.replicas` of the topics the worker creates (with `acks=all`, a write needs this "
        "many replicas); default: the cluster's.",
    )
    max_record_bytes: int = Field(
        default=1_048_576, ge=1,
        description="Larger records go to the dead-letter topic by reference (hash, size, source offset).",
    )
    fetch_max_records: int = Field(default=2000, ge=1, le=100_000, description="Records per poll.")

    _reject = model_validator(mode="before")(reject_inline_secrets)

    @model_validator(mode="after")
    def _replicas_fit(self) -> KafkaSettings:
        rf, isr = self.replication_factor, self.min_insync_replicas
        if rf is not None and isr is not None and isr > rf:
            raise ValueError(f"min_insync_replicas ({isr}) cannot exceed replication_factor ({rf}): no write could "
                             "succeed")
        return self

    @model_validator(mode="after")
    def _deployment_named(self) -> KafkaSettings:
        if self.deployment is None and not re.fullmatch(DEPLOYMENT_PATTERN, self.group_id):
            raise ValueError(
                f"group_id {self.group_id!r} cannot name the deployment's topics (letters, digits, '.', '_', '-', "
                "at most 200): set kafka.deployment"
            )
        return self

    @property
    def scope(self) -> Deployment:
        """This deployment: its store topics and the keys it writes (:mod:`worker.core.config.deployment`)."""
        return Deployment(self.deployment or self.group_id)

    def store_topic(self, store: Store) -> str:
        """The topic of ``store``: its explicit setting, else ``<deployment>.<store>``."""
        explicit = {Store.CONTROL: self.control_topic, Store.DESTINATIONS: self.destinations_topic,
                    Store.CREDENTIALS: self.credentials_topic, Store.DEMAND: self.demand_topic}.get(store)
        return explicit or self.scope.topic(store)

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaSettings:
        uses_sasl = self.security_protocol in (SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL)
        if uses_sasl:
            if self.sasl_mechanism is None:
                raise ValueError("sasl_mechanism is required with SASL_* security_protocol (PLAIN, SCRAM-...)")
            if not self.sasl_username:
                raise ValueError("sasl_username is required with SASL_* security_protocol")
            if (self.sasl_password_env is None) == (self.sasl_password_file is None):
                raise ValueError("give exactly one of sasl_password_env or sasl_password_file")
        elif self.sasl_mechanism is not None:
            raise ValueError(
                "sasl_mechanism is set but security_protocol is not SASL_PLAINTEXT or SASL_SSL"
            )
        return self

    @model_validator(mode="after")
    def _tls_complete(self) -> KafkaSettings:
        given = [name for name in TLS_FIELDS if getattr(self, name) is not None]
        if given and not self.uses_tls:
            raise ValueError(
                f"{given[0]} is set but security_protocol is {self.security_protocol.value}: use SSL or SASL_SSL "
                "for TLS, or remove the ssl_* settings"
            )
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ValueError("ssl_keyfile is set without ssl_certfile: give the client certificate too")
        if self.ssl_key_password_env is not None and self.ssl_key_password_file is not None:
            raise ValueError("give at most one of ssl_key_password_env or ssl_key_password_file")
        if self.ssl_key_password() is not None and self.ssl_certfile is None:
            raise ValueError("an ssl_key_password is set without ssl_certfile and ssl_keyfile")
        return self

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in (SecurityProtocol.SSL, SecurityProtocol.SASL_SSL)

    def ssl_key_password(self) -> SecretRef | None:
        if self.ssl_key_password_env is None and self.ssl_key_password_file is None:
            return None
        return SecretRef(env=self.ssl_key_password_env, file=self.ssl_key_password_file)

    def sasl_password(self) -> SecretRef | None:
        if self.sasl_password_env is None and self.sasl_password_file is None:
            return None
        return SecretRef(env=self.sasl_password_env, file=self.sasl_password_file)
