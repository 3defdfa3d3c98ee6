"""Secrets never reach a rendered log line, wherever they are in the event."""

from __future__ import annotations

import io
import json
import logging
import os

import structlog

from syncd.logging import REDACTED, configure_logging, register_secret


def render(*events: tuple[str, dict[str, object]], secrets: tuple[str, ...] = ()) -> str:
    buf = io.StringIO()
    configure_logging("debug", "json", secrets=secrets, stream=buf)
    log = structlog.get_logger("test")
    for event, kw in events:
        log.info(event, **kw)
    return buf.getvalue()


def test_configured_secret_is_removed_from_keys_nested_values_and_messages() -> None:
    secret = "Sup3r-Secret-Value"
    out = render(
        (f"calling with {secret}", {}),
        ("nested", {"payload": {"deep": [1, {"x": f"prefix-{secret}-suffix"}]}}),
        ("as key", {"extra": {secret: "value"}}),
        ("as tuple", {"args": ("a", secret)}),
        secrets=(secret,),
    )
    assert secret not in out
    assert out.count(REDACTED) >= 4
    assert len(out.strip().splitlines()) == 4  # every event still rendered


def test_runtime_token_registered_later_is_removed() -> None:
    buf = io.StringIO()
    configure_logging("info", "json", stream=buf)
    token = "eyJ-runtime-token-0123456789"
    register_secret(token)
    structlog.get_logger().info("renewed", note=f"new token {token}")
    assert token not in buf.getvalue()


def test_sensitive_field_names_are_redacted() -> None:
    out = render(
        (
            "call",
            {
                "password": "pw-1234567",
                "access_token": "t-1234567",
                "ssn": "123-45-6789",
                "signature": "c2lnbmF0dXJl",
                "headers": {"Authorization": "Bearer abcdefg"},
                "status": 200,
            },
        )
    )
    for value in ("pw-1234567", "t-1234567", "123-45-6789", "c2lnbmF0dXJl", "abcdefg"):
        assert value not in out
    assert json.loads(out)["status"] == 200


def test_exception_text_and_stdlib_loggers_are_redacted() -> None:
    secret = "Exc3ption-Secret"
    buf = io.StringIO()
    configure_logging("info", "json", secrets=(secret,), stream=buf)
    try:
        raise RuntimeError(f"failed with {secret}")
    except RuntimeError:
        structlog.get_logger().exception("boom")
    logging.getLogger("aiohttp.client").warning("library said %s", secret)
    out = buf.getvalue()
    assert secret not in out
    assert "RuntimeError" in out and "library said" in out


def test_console_format_is_redacted_too() -> None:
    secret = "Console-Secret-42"
    buf = io.StringIO()
    configure_logging("info", "console", secrets=(secret,), stream=buf)
    structlog.get_logger().info("hello", value=secret)
    assert secret not in buf.getvalue() and "hello" in buf.getvalue()


def test_under_systemd_each_line_carries_its_syslog_priority(tmp_path, monkeypatch) -> None:
    """journald files a line at priority 6 unless it starts with ``<N>``: without the prefix
    ``journalctl -p warning -u syncd`` found nothing (issue 17, item 8)."""
    path = tmp_path / "journal"
    with path.open("w") as stream:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        configure_logging("info", "json", stream=stream)
        structlog.get_logger("t").warning("careful", n=1)
        structlog.get_logger("t").info("fine")
        logging.getLogger("aiohttp.client").error("library error")
    lines = path.read_text().splitlines()
    assert [line[:3] for line in lines] == ["<4>", "<6>", "<3>"], lines
    assert json.loads(lines[0][3:])["event"] == "careful"

    other = tmp_path / "file"
    with other.open("w") as stream:  # JOURNAL_STREAM names another stream: no prefix
        configure_logging("info", "json", stream=stream)
        structlog.get_logger("t").warning("careful")
    assert other.read_text().startswith("{")
