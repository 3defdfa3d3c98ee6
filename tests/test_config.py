"""Configuration: TOML + environment, secrets from files and the credentials directory, errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from syncd.config import load_settings
from syncd.errors import ConfigError

SECRETS = {
    "vendor_password": "ihr-Secret-Pass-123",
    "client_secret": "wo-client-secret-456",
    "password": "wo-user-pass-789",
    "api_key": "wb-api-key-abcdef",
    "secret_key": "wb-secret-key-ghijkl",
}

VALID = f"""
[database]
url = "sqlite+aiosqlite:///var/test.db"

[infinityhr]
url = "http://127.0.0.1:1/ihr"
vendor_id = "vendor"
vendor_password = "{SECRETS["vendor_password"]}"

[whosoff]
url = "http://127.0.0.1:1/whosoff"
app_id = "app"
client_secret = "{SECRETS["client_secret"]}"
username = "api@example.com"
password = "{SECRETS["password"]}"
ip_address = "127.0.0.1"

[workbox]
url = "http://127.0.0.1:1/workbox/workbox/openapi/v1"
company_id = "c0mpany"
api_key = "{SECRETS["api_key"]}"
access_key = "ACCESS"
secret_key = "{SECRETS["secret_key"]}"
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("SYNCD_") or key == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(key)


def write(tmp_path: Path, text: str, name: str = "syncd.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "syncd", *args], capture_output=True, text=True, env=full_env, timeout=60
    )


def test_valid_file_loads_with_defaults(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, VALID))
    assert s.infinityhr.page_size == 500
    assert s.workbox.signature == "v1"
    assert s.sync.max_deletes == 50
    assert s.server.listen == "127.0.0.1:9108"
    assert s.workbox.secret_key.get_secret_value() == SECRETS["secret_key"]


def test_env_overrides_a_nested_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_WORKBOX__SECRET_KEY", "from-the-environment")
    monkeypatch.setenv("SYNCD_SYNC__MAX_DELETES", "7")
    s = load_settings(write(tmp_path, VALID))
    assert s.workbox.secret_key.get_secret_value() == "from-the-environment"
    assert s.sync.max_deletes == 7
    assert s.workbox.company_id == "c0mpany"  # the rest of the section still comes from the file


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_CONFIG", str(write(tmp_path, VALID)))
    assert load_settings().whosoff.app_id == "app"


def test_secret_from_file(tmp_path: Path) -> None:
    secret = tmp_path / "sk"
    secret.write_text("secret-from-file\n")
    secret.chmod(0o600)
    text = VALID.replace(f'secret_key = "{SECRETS["secret_key"]}"', f'secret_key_file = "{secret}"')
    s = load_settings(write(tmp_path, text))
    assert s.workbox.secret_key.get_secret_value() == "secret-from-file"


def test_world_readable_secret_file_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "sk"
    secret.write_text("secret-from-file\n")
    secret.chmod(0o644)
    text = VALID.replace(f'secret_key = "{SECRETS["secret_key"]}"', f'secret_key_file = "{secret}"')
    with pytest.raises(ConfigError) as exc:
        load_settings(write(tmp_path, text))
    assert "workbox" in str(exc.value) and "chmod 600" in str(exc.value)
    assert "secret-from-file" not in str(exc.value)


def test_secret_value_and_file_together_is_an_error(tmp_path: Path) -> None:
    secret = tmp_path / "sk"
    secret.write_text("x" * 10)
    secret.chmod(0o600)
    text = VALID.replace("[workbox]", f'[workbox]\nsecret_key_file = "{secret}"')
    with pytest.raises(ConfigError, match="either secret_key or secret_key_file"):
        load_settings(write(tmp_path, text))


def test_secret_from_credentials_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "whosoff_password").write_text("from-systemd-credential")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    text = VALID.replace(f'password = "{SECRETS["password"]}"\n', "")
    s = load_settings(write(tmp_path, text))
    assert s.whosoff.password.get_secret_value() == "from-systemd-credential"


def test_unknown_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(write(tmp_path, VALID.replace("[sync]", "") + "\n[sync]\nmax_delets = 3\n"))
    problem = (str(tmp_path / "syncd.toml"), "sync.max_delets", "unknown key (check its spelling)")
    assert exc.value.problems == [problem]


def test_every_problem_is_listed(tmp_path: Path) -> None:
    text = VALID.replace('app_id = "app"\n', "").replace("[database]", "[database]\nauto_migrat = true")
    with pytest.raises(ConfigError) as exc:
        load_settings(write(tmp_path, text))
    keys = {key for _, key, _ in exc.value.problems}
    assert keys == {"whosoff.app_id", "database.auto_migrat"}


def test_cli_unknown_key_exits_2_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, VALID + '\n[log]\nlevle = "debug"\n')
    result = run_cli("--config", str(path), "check-config")
    assert result.returncode == 2
    assert "log.levle: unknown key" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_missing_required_key_exits_2_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace('access_key = "ACCESS"\n', ""))
    result = run_cli("check-config", "--config", str(path))
    assert result.returncode == 2
    assert "workbox.access_key: required key is missing" in result.stderr


def test_cli_bad_toml_is_one_clear_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[infinityhr\nurl = 1\n")
    result = run_cli("--config", str(path), "db", "current")
    assert result.returncode == 2
    assert "not valid TOML" in result.stderr and "Traceback" not in result.stderr


def test_check_config_never_prints_a_secret(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        VALID.replace(
            "sqlite+aiosqlite:///var/test.db", "postgresql+asyncpg://syncd:db-Pass-9876@db:5432/syncd"
        ),
    )
    result = run_cli("--config", str(path), "check-config", env={"SYNCD_WHOSOFF__PASSWORD": "env-pass-xyz"})
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    for secret in [*SECRETS.values(), "db-Pass-9876", "env-pass-xyz"]:
        assert secret not in out
    assert "********" in out and 'vendor_id = "vendor"' in out


def test_example_config_is_valid(tmp_path: Path) -> None:
    """The example holds no secrets: with them as systemd credentials (as docs/operations.md installs
    it) it is a valid configuration; without them check-config names each missing one."""
    example = Path(__file__).resolve().parents[1] / "config" / "syncd.example.toml"
    bare = run_cli("--config", str(example), "check-config", env={"STATE_DIRECTORY": str(tmp_path / "state")})
    assert bare.returncode == 2 and "infinityhr.vendor_password: required key is missing" in bare.stderr
    creds = tmp_path / "creds"
    creds.mkdir()
    for name in ("infinityhr_vendor_password", "whosoff_client_secret", "whosoff_password",
                 "workbox_api_key", "workbox_secret_key"):  # fmt: skip
        (creds / name).write_text(f"not-a-real-{name}\n")
    env = {"CREDENTIALS_DIRECTORY": str(creds), "STATE_DIRECTORY": str(tmp_path / "state")}
    result = run_cli("--config", str(example), "check-config", env=env)
    assert result.returncode == 0, result.stderr
    assert f"workbox.secret_key: credential {creds / 'workbox_secret_key'}" in result.stderr


def test_example_config_documents_every_key() -> None:
    """Every key of every section appears in config/syncd.example.toml (set or in a comment)."""
    from syncd.config import Settings, VendorSettings

    text = (Path(__file__).resolve().parents[1] / "config" / "syncd.example.toml").read_text()
    from syncd.config import Section

    vendor_keys = set(VendorSettings.model_fields)
    for name, field in Settings.model_fields.items():
        model = field.annotation
        assert f"[{name}]" in text
        for key, sub in model.model_fields.items():  # type: ignore[union-attr]
            table = sub.annotation
            if isinstance(table, type) and issubclass(table, Section):  # a sub-table: [infinityhr.fields]
                assert f"[{name}.{key}]" in text, f"[{name}.{key}] is not documented"
                after = text.split(f"[{name}.{key}]", 1)[1]
                for inner in table.model_fields:
                    assert f"\n{inner} = " in after, f"{name}.{key}.{inner} is not documented"
            elif key in vendor_keys and key != "url":
                assert f"#   {key} = " in text, key
            else:
                assert f"{key} = " in text, f"{name}.{key} is not documented"


# ---------------------------------------------------- check-config warnings and rejects (issue 13, hole 11c)


def private(path: Path) -> Path:
    path.chmod(0o600)
    return path


def warnings_of(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning: ")]


def test_check_config_warns_of_plain_http_to_a_non_loopback_host(tmp_path: Path) -> None:
    text = VALID.replace("http://127.0.0.1:1/whosoff", "http://whosoff.example.com/")
    text = text.replace("http://127.0.0.1:1/ihr", "http://[::1]:8080/ihr")  # loopback: no warning
    result = run_cli("--config", str(private(write(tmp_path, text))), "check-config")
    assert result.returncode == 0, result.stderr
    warned = warnings_of(result)
    assert len(warned) == 1, result.stderr
    assert "whosoff.url" in warned[0] and "http://" in warned[0] and "whosoff.example.com" in warned[0]
    assert "[whosoff]" in result.stdout  # the effective configuration is still printed


def test_check_config_is_quiet_for_loopback_http_and_a_private_file(tmp_path: Path) -> None:
    text = VALID.replace("http://127.0.0.1:1/ihr", "http://localhost:1/ihr")
    result = run_cli("--config", str(private(write(tmp_path, text))), "check-config")
    assert result.returncode == 0, result.stderr
    assert warnings_of(result) == [], result.stderr


def test_check_config_warns_of_inline_secrets_in_a_world_readable_file(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    path.chmod(0o644)
    result = run_cli("--config", str(path), "check-config")
    assert result.returncode == 0, result.stderr
    warned = warnings_of(result)
    assert len(warned) == 1, result.stderr
    assert "readable by every user" in warned[0] and "chmod 600" in warned[0]
    for key in ("infinityhr.vendor_password", "whosoff.client_secret", "workbox.secret_key"):
        assert key in warned[0]
    for secret in SECRETS.values():
        assert secret not in result.stdout + result.stderr


def test_world_readable_file_without_inline_secrets_is_fine(tmp_path: Path) -> None:
    text = VALID
    for key, value in SECRETS.items():
        secret = tmp_path / f"{key}.secret"
        secret.write_text(value)
        private(secret)
        text = text.replace(f'{key} = "{value}"', f'{key}_file = "{secret}"')
    path = write(tmp_path, text)
    path.chmod(0o644)
    result = run_cli("--config", str(path), "check-config")
    assert result.returncode == 0, result.stderr
    assert warnings_of(result) == [], result.stderr


@pytest.mark.parametrize("schedule", ["0s", "0m", "0.0h", " 0 d "])
def test_zero_schedule_is_rejected(tmp_path: Path, schedule: str) -> None:
    path = private(write(tmp_path, VALID + f'\n[sync]\nschedule = "{schedule}"\n'))
    with pytest.raises(ConfigError) as exc:
        load_settings(path)
    assert [(k, r) for _, k, r in exc.value.problems] == [("sync.schedule", "must be longer than 0 seconds")]
    result = run_cli("--config", str(path), "check-config")
    assert result.returncode == 2 and "sync.schedule: must be longer than 0 seconds" in result.stderr


@pytest.mark.parametrize("url", ["http://host:/x", "http://host:", "https://user@host:/x"])
def test_url_with_nothing_after_the_colon_is_rejected(tmp_path: Path, url: str) -> None:
    path = private(write(tmp_path, VALID.replace("http://127.0.0.1:1/whosoff", url)))
    with pytest.raises(ConfigError) as exc:
        load_settings(path)
    assert [(k, r) for _, k, r in exc.value.problems] == [("whosoff.url", "has ':' but no port after it")]
    result = run_cli("--config", str(path), "check-config")
    assert result.returncode == 2 and "whosoff.url: has ':' but no port after it" in result.stderr


@pytest.mark.parametrize("address", ["::1", "localhost", "10.0.0.256"])
def test_whosoff_ip_address_must_be_ipv4(tmp_path: Path, address: str) -> None:
    path = private(write(tmp_path, VALID.replace('ip_address = "127.0.0.1"', f'ip_address = "{address}"')))
    with pytest.raises(ConfigError) as exc:
        load_settings(path)
    [(_, key, reason)] = exc.value.problems
    assert key == "whosoff.ip_address" and reason.startswith("must be an IPv4 address"), reason


def test_member_defaults_take_only_the_documented_optional_fields(tmp_path: Path) -> None:
    text = VALID.replace("[workbox]\n", '[workbox]\nmember_defaults = { emailAddr = "x@example.com" }\n')
    path = private(write(tmp_path, text))
    with pytest.raises(ConfigError) as exc:
        load_settings(path)
    assert "emailAddr is not an optional member field" in str(exc.value)


def test_whosoff_version_segment_is_not_doubled(tmp_path: Path) -> None:
    """A root that already ends with /v4 (as WhosOff's samples write it) says what to set."""
    path = private(
        write(tmp_path, VALID.replace("http://127.0.0.1:1/whosoff", "http://127.0.0.1:1/whosoff/v4"))
    )
    with pytest.raises(ConfigError) as exc:
        load_settings(path)
    assert 'set api_path = ""' in str(exc.value)
    fixed = private(write(tmp_path, VALID.replace("http://127.0.0.1:1/whosoff", "http://127.0.0.1:1/whosoff/v4")
                          .replace("[whosoff]\n", '[whosoff]\napi_path = ""\n')))  # fmt: skip
    assert load_settings(fixed).whosoff.api_root == "http://127.0.0.1:1/whosoff/v4"
