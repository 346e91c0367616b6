"""Settings: defaults in code, then a TOML file, then ``YEBISU_*`` environment variables.

``YEBISU_CONFIG`` names the TOML file (default ``config.toml`` in the working directory when it
exists). Environment overrides are ``YEBISU_<SECTION>_<KEY>``, e.g. ``YEBISU_DATABASE_URL``;
``YEBISU_CTI_SOURCES`` takes a JSON list of source tables.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cti_bridge.config import (
    ConfigError,
    SimulatorSourceConfig,
    SourceConfig,
    build_dataclass,
    build_source,
)

__all__ = ["ConfigError", "Settings", "load_settings"]


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    secret_key: str = ""
    session_max_age_s: int = 12 * 3600
    session_idle_s: int = 8 * 3600
    https_only: bool = False
    allowed_origins: list[str] = field(default_factory=list)
    log_level: str = "info"
    timezone: str = "Asia/Tokyo"


@dataclass
class DatabaseConfig:
    url: str = "sqlite+aiosqlite:///var/yebisu.db"
    echo: bool = False
    pool_size: int = 10


@dataclass
class RedisConfig:
    url: str = ""
    channel_prefix: str = "yebisu"


@dataclass
class AuthConfig:
    max_failed_logins: int = 5
    lockout_minutes: int = 15


@dataclass
class JobsConfig:
    subscription_hour: int = 6
    rank_hour: int = 3
    catch_up_days: int = 31
    in_process: bool = True


@dataclass
class DemoConfig:
    load_on_first_start: bool = False
    customers: int = 300
    seed: int = 1


@dataclass
class OrdersConfig:
    cutoff: str = "15:00"
    closed_weekdays: list[int] = field(default_factory=lambda: [6])
    origin_region: str = "福岡県"
    default_carrier: str = "yamato"
    default_payment: str = "cod"

    @property
    def cutoff_time(self) -> dt.time:
        return dt.time.fromisoformat(self.cutoff)


@dataclass
class PrivacyConfig:
    karte_roles: list[str] = field(default_factory=lambda: ["operator", "supervisor", "admin"])


@dataclass
class AlertsConfig:
    open_response_minutes: int = 60
    callback_grace_minutes: int = 0


@dataclass
class InputsConfig:
    max_body_bytes: int = 10 * 1024 * 1024
    max_upload_bytes: int = 20 * 1024 * 1024
    max_fields: int = 5000
    max_field_chars: int = 65536


@dataclass
class CtiConfig:
    in_process: bool = True
    ring_timeout_s: int = 60
    async_commit: bool = True
    sources: list[SourceConfig] = field(default_factory=lambda: [SimulatorSourceConfig()])


@dataclass
class Settings:
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    cti: CtiConfig = field(default_factory=CtiConfig)
    orders: OrdersConfig = field(default_factory=OrdersConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    inputs: InputsConfig = field(default_factory=InputsConfig)
    source_file: str = ""

    def source(self, name: str) -> SourceConfig | None:
        return next((s for s in self.cti.sources if s.name == name), None)


SECTIONS: dict[str, type[Any]] = {
    "server": ServerConfig,
    "database": DatabaseConfig,
    "redis": RedisConfig,
    "auth": AuthConfig,
    "jobs": JobsConfig,
    "demo": DemoConfig,
    "cti": CtiConfig,
    "orders": OrdersConfig,
    "privacy": PrivacyConfig,
    "alerts": AlertsConfig,
    "inputs": InputsConfig,
}


def _section(name: str, cls: type[Any], data: Any) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: must be a table")
    data = dict(data)
    sources_raw = data.pop("sources", None) if cls is CtiConfig else None
    obj = build_dataclass(cls, data, f"{name}.")
    if cls is CtiConfig and sources_raw is not None:
        if not isinstance(sources_raw, list):
            raise ConfigError("cti.sources: must be an array of tables ([[cti.sources]])")
        obj.sources = [build_source(s, i) for i, s in enumerate(sources_raw)]
        names = [s.name for s in obj.sources]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ConfigError(f"cti.sources: duplicate name {sorted(dupes)[0]!r}")
    return obj


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    out: dict[str, dict[str, Any]] = {}
    for var, value in environ.items():
        if not var.startswith("YEBISU_") or var == "YEBISU_CONFIG":
            continue
        rest = var[len("YEBISU_") :].lower()
        section, _, key = rest.partition("_")
        if section not in SECTIONS or not key:
            continue  # e.g. YEBISU_TEST_DATABASE_URL belongs to the test suite
        if section == "cti" and key == "sources":
            try:
                out.setdefault(section, {})[key] = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{var}: not valid JSON ({exc.msg})") from None
            continue
        out.setdefault(section, {})[key] = value
    return out


def _validate(s: Settings) -> None:
    if not 1 <= s.server.port <= 65535:
        raise ConfigError("server.port: must be between 1 and 65535")
    if s.server.session_max_age_s < 60:
        raise ConfigError("server.session_max_age_s: must be at least 60")
    if s.server.session_idle_s < 60:
        raise ConfigError("server.session_idle_s: must be at least 60")
    try:
        ZoneInfo(s.server.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"server.timezone: unknown time zone {s.server.timezone!r}") from None
    for origin in s.server.allowed_origins:
        if not origin.startswith(("http://", "https://")) or origin.count("/") > 2:
            raise ConfigError(
                f"server.allowed_origins: {origin!r} must be an origin like https://cti.example.jp"
            )
    if s.server.log_level.lower() not in ("critical", "error", "warning", "info", "debug"):
        raise ConfigError("server.log_level: must be critical, error, warning, info or debug")
    url = s.database.url
    if not (url.startswith("sqlite+aiosqlite://") or url.startswith("postgresql+psycopg://")):
        raise ConfigError(
            "database.url: must start with sqlite+aiosqlite:// or postgresql+psycopg://"
        )
    if s.redis.url and not s.redis.url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("redis.url: must start with redis://, rediss:// or unix:// (or be empty)")
    if s.auth.max_failed_logins < 1:
        raise ConfigError("auth.max_failed_logins: must be at least 1")
    if s.auth.lockout_minutes < 1:
        raise ConfigError("auth.lockout_minutes: must be at least 1")
    try:
        s.orders.cutoff_time  # noqa: B018
    except ValueError:
        raise ConfigError(f"orders.cutoff: must be HH:MM, got {s.orders.cutoff!r}") from None
    if any(not 0 <= d <= 6 for d in s.orders.closed_weekdays):
        raise ConfigError("orders.closed_weekdays: each must be 0 (Monday) to 6 (Sunday)")
    if s.orders.default_payment not in ("cod", "postal", "card", "bank"):
        raise ConfigError("orders.default_payment: must be cod, postal, card or bank")
    bad_roles = set(s.privacy.karte_roles) - {"operator", "supervisor", "backoffice", "admin"}
    if bad_roles:
        raise ConfigError(f"privacy.karte_roles: unknown role {sorted(bad_roles)[0]!r}")
    if not 0 <= s.jobs.subscription_hour <= 23:
        raise ConfigError("jobs.subscription_hour: must be between 0 and 23")
    if not 0 <= s.jobs.rank_hour <= 23:
        raise ConfigError("jobs.rank_hour: must be between 0 and 23")
    if not 0 <= s.jobs.catch_up_days <= 366:
        raise ConfigError("jobs.catch_up_days: must be between 0 and 366")
    if s.alerts.open_response_minutes < 1:
        raise ConfigError("alerts.open_response_minutes: must be at least 1")
    if s.alerts.callback_grace_minutes < 0:
        raise ConfigError("alerts.callback_grace_minutes: must be 0 or more")
    for key in ("max_body_bytes", "max_upload_bytes", "max_fields", "max_field_chars"):
        if getattr(s.inputs, key) < 1:
            raise ConfigError(f"inputs.{key}: must be at least 1")
    if s.cti.ring_timeout_s < 5:
        raise ConfigError("cti.ring_timeout_s: must be at least 5")


def load_settings(
    path: str | os.PathLike[str] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Load settings from code defaults, the TOML file and the environment, in that order.

    Raises :class:`ConfigError` naming the key when a value is wrong.
    """
    env = dict(os.environ if environ is None else environ)
    file_data: dict[str, Any] = {}
    chosen = path or env.get("YEBISU_CONFIG")
    if chosen is None and Path("config.toml").exists():
        chosen = "config.toml"
    if chosen:
        p = Path(chosen)
        if not p.exists():
            raise ConfigError(f"config file {p}: not found")
        try:
            file_data = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {p}: {exc}") from None
    for key in file_data:
        if key not in SECTIONS:
            raise ConfigError(f"{key}: unknown section")
    data = _merge(file_data, _env_overrides(env))
    kwargs = {name: _section(name, cls, data.get(name, {})) for name, cls in SECTIONS.items()}
    settings = Settings(**kwargs, source_file=str(chosen or ""))
    _validate(settings)
    return settings


def resolve_secret_key(settings: Settings, var_dir: Path) -> str:
    """Return the configured secret key, or one kept in ``var_dir`` for the embedded default."""
    if settings.server.secret_key:
        return settings.server.secret_key
    var_dir.mkdir(parents=True, exist_ok=True)
    key_file = var_dir / "secret.key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(48), encoding="utf-8")
        key_file.chmod(0o600)
    return key_file.read_text(encoding="utf-8").strip()


def example_keys() -> dict[str, list[str]]:
    """Every key the code knows, by section, for the config.example.toml check."""
    from cti_bridge.config import SOURCE_KINDS

    out = {name: [f.name for f in dataclasses.fields(cls)] for name, cls in SECTIONS.items()}
    for kind, cls in SOURCE_KINDS.items():
        out[f"cti.sources.{kind}"] = ["kind", *(f.name for f in dataclasses.fields(cls))]
    return out
