"""Configuration: defaults, file, environment, errors, and the documented example."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import ConfigError, example_keys, load_settings
from cti_bridge.config import ModemSourceConfig, SimulatorSourceConfig, WebhookSourceConfig

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_without_file_or_env() -> None:
    s = load_settings(environ={})
    assert s.server.port == 8000
    assert s.database.url.startswith("sqlite+aiosqlite://")
    assert s.redis.url == ""
    assert len(s.cti.sources) == 1 and isinstance(s.cti.sources[0], SimulatorSourceConfig)


def test_file_overrides_defaults_and_env_overrides_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[server]
port = 9000
host = "0.0.0.0"
[auth]
max_failed_logins = 3
""",
    )
    s = load_settings(path, environ={})
    assert (s.server.port, s.server.host, s.auth.max_failed_logins) == (9000, "0.0.0.0", 3)
    s = load_settings(path, environ={"YEBISU_SERVER_PORT": "9100"})
    assert s.server.port == 9100
    assert s.server.host == "0.0.0.0"  # untouched keys keep the file's value


def test_yebisu_config_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 8123\n")
    s = load_settings(environ={"YEBISU_CONFIG": str(path)})
    assert s.server.port == 8123


def test_sources_from_file_and_env(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[cti.sources]]
kind = "modem"
port = "/dev/ttyS1"
line = "sales"
init = ["ATZ", "AT#CID=1"]

[[cti.sources]]
kind = "webhook"
name = "cloud"
secret = "s3cret"
""",
    )
    s = load_settings(path, environ={})
    modem, hook = s.cti.sources
    assert isinstance(modem, ModemSourceConfig) and modem.port == "/dev/ttyS1"
    assert modem.init == ["ATZ", "AT#CID=1"] and modem.line == "sales" and modem.name == "modem"
    assert isinstance(hook, WebhookSourceConfig) and hook.name == "cloud"
    env = {"YEBISU_CTI_SOURCES": '[{"kind": "nd", "port": "/dev/ttyUSB1"}]'}
    s = load_settings(path, environ=env)
    assert [src.kind for src in s.cti.sources] == ["nd"]


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[server]\nprot = 1\n", {}, "server.prot: unknown key"),
        ('[server]\nport = "eighty"\n', {}, "server.port: expected int"),
        ("[serverr]\n", {}, "serverr: unknown section"),
        ("", {"YEBISU_SERVER_PORT": "abc"}, "server.port: expected int"),
        ("", {"YEBISU_SERVER_PORT": "70000"}, "server.port: must be between"),
        ("", {"YEBISU_DATABASE_URL": "mysql://x"}, "database.url: must start with"),
        ("", {"YEBISU_REDIS_URL": "http://x"}, "redis.url: must start with"),
        ("", {"YEBISU_SERVER_TIMEZONE": "Mars/Base"}, "server.timezone: unknown time zone"),
        ('[[cti.sources]]\nkind = "fax"\n', {}, "cti.sources[0].kind: must be one of"),
        ('[[cti.sources]]\nkind = "webhook"\n', {}, "cti.sources[0].secret: a webhook"),
        ('[[cti.sources]]\nkind = "sip"\nport = "x"\n', {}, "cti.sources[0].port: expected"),
        ('[[cti.sources]]\nkind = "nd"\nparity = "X"\n', {}, "cti.sources[0].parity"),
        ('[[cti.sources]]\nkind = "modem"\nspeed = 1\n', {}, "cti.sources[0].speed: unknown"),
        ("[jobs]\nsubscription_hour = 25\n", {}, "jobs.subscription_hour"),
        ("[server\n", {}, "config file"),
        ("", {"YEBISU_CTI_SOURCES": "[not json"}, "YEBISU_CTI_SOURCES: not valid JSON"),
    ],
)
def test_invalid_config_names_key_and_problem(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(path, environ=env)


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(environ={"YEBISU_CONFIG": str(tmp_path / "nope.toml")})


def test_every_key_in_code_is_documented_in_config_example() -> None:
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    # Keys appear as `key = ...` (active or commented out) or in the source-key legend.
    documented = set(re.findall(r"^#?\s*([a-z_]+)\s*=", text, flags=re.M))
    documented |= set(re.findall(r"^#\s{3}([a-z_]+)\s{2,}", text, flags=re.M))
    missing = {
        f"{section}.{key}"
        for section, keys in example_keys().items()
        for key in keys
        if key not in documented and key != "sources"
    }
    assert not missing, f"config.example.toml does not document: {sorted(missing)}"


def test_config_example_itself_loads() -> None:
    s = load_settings(ROOT / "config.example.toml", environ={})
    assert s.cti.sources[0].kind == "simulator"


def test_cli_stops_on_invalid_config_with_message(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 0\n")
    proc = subprocess.run(
        [sys.executable, "-m", "app", "--config", str(path), "db", "upgrade"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "configuration error: server.port: must be between 1 and 65535" in proc.stderr
