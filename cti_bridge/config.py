"""Configuration of CTI sources, one dataclass per kind of source.

The bridge runs inside the app or as its own process (``yebisu bridge``), so the schema of a
source lives here, beside the sources, and the app's configuration embeds it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar


class ConfigError(ValueError):
    """A configuration value is missing or wrong; the message names the key."""


@dataclass
class SourceConfig:
    """Keys every source has."""

    kind: ClassVar[str] = ""
    name: str = ""
    line: str = "main"
    enabled: bool = True
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0


@dataclass
class ModemSourceConfig(SourceConfig):
    """Hayes modem with caller ID (``AT+VCID=1``) on a serial port."""

    kind: ClassVar[str] = "modem"
    port: str = "/dev/ttyACM0"
    baudrate: int = 115200
    init: list[str] = field(default_factory=lambda: ["ATZ", "AT+VCID=1"])
    dial_prefix: str = ""
    # Seconds without RING (or caller ID) after which a ringing call counts as ended.
    ring_end_s: float = 8.0
    # Seconds after ATD…; before ATH releases the line to the operator's handset.
    dial_release_s: float = 8.0


@dataclass
class NdSourceConfig(SourceConfig):
    """Number Display adapter on a serial port (``STX MMDD w HHMM number ETX`` frames)."""

    kind: ClassVar[str] = "nd"
    port: str = "/dev/ttyUSB0"
    baudrate: int = 9600
    bytesize: int = 7
    parity: str = "E"
    stopbits: int = 1


@dataclass
class SipSourceConfig(SourceConfig):
    """UDP SIP endpoint that the PBX rings or mirrors INVITEs to."""

    kind: ClassVar[str] = "sip"
    host: str = "0.0.0.0"
    port: int = 5060
    allowed_peers: list[str] = field(default_factory=lambda: ["127.0.0.1"])
    final_response: int = 486
    # Seconds the INVITE is kept ringing (180) before the final response; 0 = at once.
    final_after_s: float = 45.0


@dataclass
class AmiSourceConfig(SourceConfig):
    """Asterisk Manager Interface client."""

    kind: ClassVar[str] = "ami"
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = ""
    secret: str = ""
    originate_context: str = "from-internal"
    originate_channel: str = "PJSIP/{extension}"
    # Seconds the operator's extension rings on click-to-dial before Asterisk gives up.
    originate_timeout_s: float = 30.0
    # Contexts of inbound (trunk) channels; empty = any call whose caller is an outside number.
    inbound_contexts: list[str] = field(default_factory=list)


@dataclass
class WebhookSourceConfig(SourceConfig):
    """Cloud PBX posting JSON to ``/cti/webhook/{name}``, signed with HMAC-SHA256."""

    kind: ClassVar[str] = "webhook"
    secret: str = ""
    # Seconds the signed X-Yebisu-Timestamp may differ from our clock (replays are refused).
    tolerance_s: float = 300.0


@dataclass
class SimulatorSourceConfig(SourceConfig):
    """Built-in simulator fed by ``yebisu simulate-call`` and the demo."""

    kind: ClassVar[str] = "simulator"


SOURCE_KINDS: dict[str, type[SourceConfig]] = {
    cls.kind: cls
    for cls in (
        ModemSourceConfig,
        NdSourceConfig,
        SipSourceConfig,
        AmiSourceConfig,
        WebhookSourceConfig,
        SimulatorSourceConfig,
    )
}


def coerce(value: Any, typ: Any, key: str) -> Any:
    """Return ``value`` converted to the field type named by ``typ`` or raise ConfigError."""
    typ_s = typ if isinstance(typ, str) else getattr(typ, "__name__", str(typ))
    try:
        if typ_s == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
                return True
            if isinstance(value, str) and value.lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError
        if typ_s == "int":
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if typ_s == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if typ_s == "str":
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise ValueError
            return str(value)
        if typ_s.startswith("list[str]"):
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError
            return list(value)
        if typ_s.startswith("list[int]"):
            if isinstance(value, str):
                value = [v.strip() for v in value.strip("[]").split(",") if v.strip()]
            if not isinstance(value, list) or any(isinstance(v, bool) for v in value):
                raise ValueError
            return [int(v) for v in value]
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected {typ_s}, got {value!r}") from None
    raise ConfigError(f"{key}: unsupported type {typ_s}")


def build_dataclass(cls: type[Any], data: dict[str, Any], prefix: str) -> Any:
    """Build ``cls`` from a mapping, rejecting unknown keys and wrong types."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key == "kind" and issubclass(cls, SourceConfig):
            continue
        if key not in fields:
            raise ConfigError(f"{prefix}{key}: unknown key")
        kwargs[key] = coerce(value, fields[key].type, f"{prefix}{key}")
    return cls(**kwargs)


def build_source(data: dict[str, Any], index: int) -> SourceConfig:
    """Build one ``[[cti.sources]]`` entry."""
    prefix = f"cti.sources[{index}]."
    kind = data.get("kind")
    if kind not in SOURCE_KINDS:
        raise ConfigError(f"{prefix}kind: must be one of {', '.join(SOURCE_KINDS)}, got {kind!r}")
    src: SourceConfig = build_dataclass(SOURCE_KINDS[kind], data, prefix)
    if not src.name:
        src.name = f"{kind}{index}" if index else kind
    if isinstance(src, WebhookSourceConfig) and not src.secret:
        raise ConfigError(f"{prefix}secret: a webhook source needs a secret")
    if isinstance(src, WebhookSourceConfig) and not 0 < src.tolerance_s <= 3600:
        raise ConfigError(f"{prefix}tolerance_s: must be > 0 and at most 3600 seconds")
    if isinstance(src, NdSourceConfig) and src.parity not in ("N", "E", "O"):
        raise ConfigError(f"{prefix}parity: must be N, E or O")
    if isinstance(src, SipSourceConfig):
        if not 400 <= src.final_response <= 699:
            raise ConfigError(f"{prefix}final_response: must be a 4xx-6xx status (we never answer)")
        if src.final_after_s < 0:
            raise ConfigError(f"{prefix}final_after_s: must be >= 0")
    if isinstance(src, ModemSourceConfig) and (src.ring_end_s <= 0 or src.dial_release_s < 0):
        raise ConfigError(f"{prefix}ring_end_s: must be > 0 (and dial_release_s >= 0)")
    if src.reconnect_min_s <= 0 or src.reconnect_max_s < src.reconnect_min_s:
        raise ConfigError(f"{prefix}reconnect_max_s: must be >= reconnect_min_s > 0")
    return src
