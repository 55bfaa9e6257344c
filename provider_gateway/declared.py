"""`GATEWAY_CHANNELS_FILE`: environments, keys and channels declared in TOML (e.g. from a Secret).

The file holds the same data the CLI writes, so a sidecar can start fully configured:

    [[environments]]
    name = "production"
    [[environments.keys]]              # as printed by `provider-gateway keys create`
    public_key = "pk_..."
    secret_key = "sk_..."
    signing_key = "-----BEGIN PRIVATE KEY-----..."   # or signing_public_key = "...PUBLIC KEY..."

    [[channels]]
    id = "8b5f2c1e-..."                # the Knock channel id your app uses
    provider = "slack"                 # or "ms-teams"
    client_id = "123.456"
    client_secret = "..."              # ms-teams may use client_certificate = '''PEM''' instead
    app_id = "A0123"                   # optional
    environment = "production"         # optional: without it the channel serves every environment

Applying it is idempotent: what exists is kept, what is missing is created, and a declared
channel whose settings differ is updated. Nothing absent from the file is removed.
"""

from __future__ import annotations

import tomllib
import uuid
from pathlib import Path
from typing import Annotated, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from provider_gateway.config import ConfigError, Secret
from provider_gateway.gateway import Gateway
from provider_gateway.keys import (
    MIN_KEY_RANDOM_CHARS,
    api_key_kind,
    is_strong_api_key,
    public_pem_of,
)
from provider_gateway.ms_teams.credentials import certificate_credential
from provider_gateway.storage.credentials import DeclaredPair

ACTOR = "channels_file"
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]
NonEmpty = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]


def _key_of(kind: Literal["public", "secret"]) -> AfterValidator:
    """A real key, as `keys create` prints it: the docs' `sk_...` or a hand-typed `sk_1` would
    otherwise become working credentials of the environment."""
    prefix = "pk_" if kind == "public" else "sk_"

    def check(value: str) -> str:
        if api_key_kind(value) != kind:
            raise ValueError(f"must be a {prefix} key")
        if not is_strong_api_key(value):
            raise ValueError(
                f"must be a real key: {prefix} and at least {MIN_KEY_RANDOM_CHARS} random "
                "url-safe characters, as `provider-gateway keys create` prints"
            )
        return value

    return AfterValidator(check)


def _uuid(value: str) -> str:
    return str(uuid.UUID(value))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class DeclaredKeys(_Model):
    public_key: Annotated[str, _key_of("public")] | None = None
    secret_key: Annotated[str, _key_of("secret")] | None = None
    signing_key: NonEmpty | None = None
    signing_public_key: NonEmpty | None = None

    def signing_public_pem(self) -> str | None:
        if self.signing_public_key:
            serialization.load_pem_public_key(self.signing_public_key.encode())
            return self.signing_public_key
        if self.signing_key:
            private = serialization.load_pem_private_key(self.signing_key.encode(), password=None)
            if not isinstance(private, rsa.RSAPrivateKey):
                raise ValueError("signing_key must be an RSA private key")
            return public_pem_of(private)
        return None


class DeclaredEnvironment(_Model):
    name: Name
    keys: list[DeclaredKeys] = Field(default_factory=list)


class DeclaredChannel(_Model):
    id: Annotated[str, AfterValidator(_uuid)]
    provider: Literal["slack", "ms-teams"]
    client_id: NonEmpty
    client_secret: NonEmpty | None = None
    client_certificate: NonEmpty | None = None  # ms-teams: PEM with private key + certificate
    signing_secret: NonEmpty | None = None  # slack: verifies Events API requests
    app_id: NonEmpty | None = None
    environment: Name | None = None

    @model_validator(mode="after")
    def _one_credential(self) -> DeclaredChannel:
        if (self.client_secret is None) == (self.client_certificate is None):
            raise ValueError("give exactly one of client_secret and client_certificate")
        if self.signing_secret is not None and self.provider != "slack":
            raise ValueError("signing_secret is for slack channels")
        if self.client_certificate is not None:
            if self.provider != "ms-teams":
                raise ValueError("client_certificate is for ms-teams channels")
            certificate_credential(self.client_certificate)  # raises ValueError when unusable
        return self

    @property
    def credential(self) -> str:
        credential = self.client_secret or self.client_certificate
        assert credential is not None
        return credential


class ChannelsFile(_Model):
    environments: list[DeclaredEnvironment] = Field(default_factory=list)
    channels: list[DeclaredChannel] = Field(default_factory=list)


def load_channels_file(path: Path) -> ChannelsFile:
    """Parse and validate; any problem is one ConfigError line naming the variable and field."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        declared = ChannelsFile.model_validate(raw)
        for environment in declared.environments:
            for keys in environment.keys:
                keys.signing_public_pem()
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"GATEWAY_CHANNELS_FILE: not valid TOML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"GATEWAY_CHANNELS_FILE: {where}: {message}") from None
    except (ValueError, TypeError, OSError) as exc:
        raise ConfigError(f"GATEWAY_CHANNELS_FILE: {exc}") from None
    names = {environment.name for environment in declared.environments}
    for index, channel in enumerate(declared.channels):
        if channel.environment is not None and channel.environment not in names:
            existing = f"channels.{index}.environment: {channel.environment!r}"
            raise ConfigError(f"GATEWAY_CHANNELS_FILE: {existing} is not declared in environments")
    return declared


async def apply_channels_file(gateway: Gateway, declared: ChannelsFile) -> None:
    environment_ids: dict[str, str] = {}
    for declared_environment in declared.environments:
        environment = await gateway.environments.by_name(declared_environment.name)
        if environment is None:
            environment = await gateway.environments.create(declared_environment.name, actor=ACTOR)
        environment_ids[environment.name] = environment.id
        pairs = [
            DeclaredPair(keys.public_key, keys.secret_key, keys.signing_public_pem())
            for keys in declared_environment.keys
        ]
        await gateway.credentials.import_keys(environment, pairs)
    for channel in declared.channels:
        await gateway.channels.declare(
            channel_id=channel.id,
            provider=channel.provider,
            client_id=channel.client_id,
            client_secret=Secret(channel.credential),
            signing_secret=Secret(channel.signing_secret) if channel.signing_secret else None,
            app_id=channel.app_id,
            environment_id=environment_ids[channel.environment] if channel.environment else None,
            actor=ACTOR,
        )
