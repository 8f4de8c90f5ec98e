"""The gateway's config file (TOML): where Gatekeeper is, which upstream servers to front.

    [gatekeeper]
    url = "http://127.0.0.1:8000"     # or url_env = "NAME"; default: $GATEKEEPER_URL
    token_env = "GATEKEEPER_TOKEN"    # or token = "..."; default: $GATEKEEPER_TOKEN
    workflow = "mcp-tools"
    owner = "it-approvers"            # optional
    thread_id = "session"             # one execution per MCP session, or a fixed thread id
    progress_interval = 10            # seconds between progress notifications while waiting

    [[upstream]]
    name = "hr"
    command = ["python3", "hr_server.py"]   # stdio; or url = "http://host:port/mcp"
    prefix = false                          # true: expose and gate tools as "hr.<tool>"

    [tools."iam.grant"]                     # optional, per gated tool name
    labels = ["privilege"]
    risk = 0.7
    read_only = false                       # overrides the tool's readOnlyHint

Every problem is a `ConfigError` whose message names the file, the key and what is wrong.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # the extra installs tomli on Python 3.10
    import tomli as tomllib

THREAD_ID = re.compile(r"[A-Za-z0-9._:-]{1,200}")
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ConfigError(Exception):
    """The config file cannot be used; the message says where and why, in one line."""


@dataclass(frozen=True)
class Upstream:
    """One MCP server behind the gateway: a stdio command or a streamable-HTTP URL."""

    name: str
    command: tuple[str, ...] = ()
    url: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    prefix: bool = False

    def exposed(self, tool: str) -> str:
        """The tool's name as the gateway serves and gates it."""
        return f"{self.name}.{tool}" if self.prefix else tool


@dataclass(frozen=True)
class ToolHints:
    """What the config adds to a tool's gate checks: risk labels and score, read-only override."""

    labels: tuple[str, ...] = ()
    risk: float | None = None
    read_only: bool | None = None
    destructive: bool | None = None


@dataclass(frozen=True)
class Config:
    url: str
    token: str
    workflow: str
    upstreams: tuple[Upstream, ...]
    owner: str | None = None
    thread_id: str = "session"
    progress_interval: float = 10.0
    tools: Mapping[str, ToolHints] = field(default_factory=dict)

    @property
    def per_session(self) -> bool:
        return self.thread_id == "session"


def load(path: str | os.PathLike, environ: Mapping[str, str] | None = None) -> Config:
    """Read and check the config file; `environ` supplies `*_env` values (default os.environ)."""
    environ = os.environ if environ is None else environ
    where = str(path)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file") from None
    except OSError as error:
        raise ConfigError(f"{where}: cannot read it ({error.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{where}: not valid TOML ({error})") from None
    return _config(_Reader(where), data, environ)


class _Reader:
    """Typed access to one table, naming the file and the key in every error."""

    def __init__(self, where: str):
        self.where = where

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.where}: {key} {problem}")

    def table(self, data: Any, key: str) -> dict:
        if not isinstance(data, dict):
            raise self.fail(key, "must be a table")
        return data

    def only(self, data: dict, key: str, allowed: set[str]) -> None:
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise self.fail(f"{key}.{unknown[0]}" if key else unknown[0], "is not a known key")

    def string(self, data: dict, key: str, name: str, *, required=False) -> str | None:
        value = data.get(name)
        if value is None:
            if required:
                raise self.fail(f"{key}.{name}", "is required")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{key}.{name}", "must be a non-empty string")
        return value

    def boolean(self, data: dict, key: str, name: str) -> bool | None:
        value = data.get(name)
        if value is not None and not isinstance(value, bool):
            raise self.fail(f"{key}.{name}", "must be true or false")
        return value

    def number(self, data: dict, key: str, name: str, low: float, high: float) -> float | None:
        value = data.get(name)
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise self.fail(f"{key}.{name}", f"must be a number from {low:g} to {high:g}")
        return float(value)


def _config(read: _Reader, data: dict, environ: Mapping[str, str]) -> Config:
    read.only(data, "", {"gatekeeper", "upstream", "tools"})
    gk = read.table(data.get("gatekeeper", {}), "[gatekeeper]")
    read.only(
        gk,
        "gatekeeper",
        {"url", "url_env", "token", "token_env", "workflow", "owner", "thread_id"}
        | {"progress_interval"},
    )
    url = _secret(read, gk, environ, "url", "GATEKEEPER_URL")
    if not url.startswith(("http://", "https://")):
        raise read.fail("gatekeeper.url", f"must be an http(s) URL, not {url!r}")
    token = _secret(read, gk, environ, "token", "GATEKEEPER_TOKEN")
    workflow = read.string(gk, "gatekeeper", "workflow", required=True)
    thread_id = read.string(gk, "gatekeeper", "thread_id") or "session"
    if not THREAD_ID.fullmatch(thread_id):
        raise read.fail("gatekeeper.thread_id", "must be 1 to 200 of A-Z a-z 0-9 . _ : -")
    interval = read.number(gk, "gatekeeper", "progress_interval", 1, 300)
    upstreams = _upstreams(read, data.get("upstream"))
    tools = {
        name: _hints(read, f"tools.{name!r}", hints)
        for name, hints in read.table(data.get("tools", {}), "[tools]").items()
    }
    return Config(
        url=url,
        token=token,
        workflow=workflow,
        owner=read.string(gk, "gatekeeper", "owner"),
        thread_id=thread_id,
        progress_interval=10.0 if interval is None else interval,
        upstreams=upstreams,
        tools=tools,
    )


def _secret(read: _Reader, gk: dict, environ: Mapping[str, str], name: str, default: str) -> str:
    """`name` from the file, else from the variable `name_env` names (default `default`)."""
    value = read.string(gk, "gatekeeper", name)
    if value is not None:
        return value
    variable = read.string(gk, "gatekeeper", f"{name}_env") or default
    value = environ.get(variable, "").strip()
    if not value:
        raise read.fail(f"gatekeeper.{name}", f"is not set: give it, or set ${variable}")
    return value


def _upstreams(read: _Reader, data: Any) -> tuple[Upstream, ...]:
    if data is None:
        raise read.fail("[[upstream]]", "is required: name at least one MCP server")
    if not isinstance(data, list) or not data:
        raise read.fail("[[upstream]]", "must be a list of tables")
    upstreams, names = [], set()
    for number, item in enumerate(data, 1):
        key = f"upstream #{number}"
        item = read.table(item, key)
        read.only(item, key, {"name", "command", "url", "env", "cwd", "prefix"})
        name = read.string(item, key, "name", required=True)
        if not NAME.fullmatch(name):
            raise read.fail(f"{key}.name", "must be 1 to 64 of A-Z a-z 0-9 _ -")
        if name in names:
            raise read.fail(f"{key}.name", f"{name!r} is used twice")
        names.add(name)
        key = f"upstream {name!r}"
        command, url = item.get("command"), read.string(item, key, "url")
        if (command is None) == (url is None):
            raise read.fail(key, "needs exactly one of command (stdio) or url (streamable HTTP)")
        if command is not None and (
            not isinstance(command, list)
            or not command
            or not all(isinstance(part, str) and part for part in command)
        ):
            raise read.fail(f"{key}.command", "must be a non-empty list of strings")
        if url is not None and not url.startswith(("http://", "https://")):
            raise read.fail(f"{key}.url", f"must be an http(s) URL, not {url!r}")
        env = read.table(item.get("env", {}), f"{key}.env")
        if not all(isinstance(value, str) for value in env.values()):
            raise read.fail(f"{key}.env", "values must be strings")
        upstreams.append(
            Upstream(
                name=name,
                command=tuple(command or ()),
                url=url,
                env=env,
                cwd=read.string(item, key, "cwd"),
                prefix=bool(read.boolean(item, key, "prefix")),
            )
        )
    return tuple(upstreams)


def _hints(read: _Reader, key: str, data: Any) -> ToolHints:
    data = read.table(data, key)
    read.only(data, key, {"labels", "risk", "read_only", "destructive"})
    labels = data.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise read.fail(f"{key}.labels", "must be a list of strings")
    return ToolHints(
        labels=tuple(labels),
        risk=read.number(data, key, "risk", 0, 1),
        read_only=read.boolean(data, key, "read_only"),
        destructive=read.boolean(data, key, "destructive"),
    )
