"""Strict parsers for configuration taken from the environment.

Every parser treats an empty value as unset and raises ConfigurationError, naming the
variable, for anything it cannot read: a typo in production must stop start-up, not be ignored.
"""

import ipaddress
import os
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured


class ConfigurationError(ImproperlyConfigured):
    """A setting the environment got wrong; its message names the variable, in one line."""


_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no"}


def _raw(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def env_str(name: str, default: str | None = None) -> str | None:
    value = _raw(name)
    return default if value is None else value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigurationError(f"{name} must be one of 1 0 true false yes no, not {value!r}")


def env_int(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, not {value!r}") from None
    if number < minimum or (maximum is not None and number > maximum):
        upper = "" if maximum is None else f" and at most {maximum}"
        raise ConfigurationError(f"{name} must be at least {minimum}{upper}, not {number}")
    return number


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def env_networks(name: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Comma-separated networks in CIDR form (10.0.0.0/8, fd00::/8); an address alone is /32
    or /128. Host bits set (10.0.0.1/8) are refused: they usually mean a typo."""
    networks = []
    for item in env_list(name):
        try:
            networks.append(ipaddress.ip_network(item, strict=True))
        except ValueError as error:
            raise ConfigurationError(
                f"{name} must be comma-separated networks such as 10.0.0.0/8, not {item!r} "
                f"({error})"
            ) from None
    return networks


def env_url(name: str) -> str | None:
    """An http(s) URL with a host, or None when unset."""
    value = _raw(name)
    if value is None:
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{name} must be an http or https URL, not {value!r}")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _raw(name)
    if value is None:
        return default
    if value not in choices:
        raise ConfigurationError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def parse_database_url(name: str, url: str) -> dict:
    """Turn postgres://user:password@host:port/name?options into Django's DATABASES entry.

    A socket directory may be given as `?host=/path` (the embedded server's form).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigurationError(
            f"{name} must be a postgres:// URL; PostgreSQL is the only database"
        )
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    db_name = unquote(parts.path.lstrip("/"))
    if not db_name:
        raise ConfigurationError(f"{name} must name a database, as in postgres://host/gatekeeper")
    try:
        port = parts.port
    except ValueError:
        raise ConfigurationError(f"{name} has a port that is not a number") from None
    host = query.pop("host", None) or parts.hostname or ""
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": db_name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": str(port or ""),
        "OPTIONS": query,
    }
