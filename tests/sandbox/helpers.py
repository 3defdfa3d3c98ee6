"""Requests built by hand from the contract (deliberately not syncd's clients nor sandbox helpers)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any

from lxml import etree

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
IHR_NS = "http://www.infinityhr.com/webservices/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
NS = {"s": SOAP_NS, "i": IHR_NS}


# ---- WhosOff ---------------------------------------------------------------------------------------
def nonce() -> str:
    return secrets.token_hex(16)  # 32 characters


def whosoff_secret(n: str, client_secret: str) -> str:
    return hashlib.sha512((n + client_secret).encode()).hexdigest()


def credentials_body(creds: dict[str, str], **override: Any) -> dict[str, Any]:
    n = override.pop("nonce", None) or nonce()
    body = {
        "username": creds["username"],
        "password": creds["password"],
        "ip_address": creds["ip_address"],
        "nonce": n,
        "secret": whosoff_secret(n, creds["client_secret"]),
        "app_id": creds["app_id"],
    }
    body.update(override)
    return body


def token_body(creds: dict[str, str], token: str, **override: Any) -> dict[str, Any]:
    n = nonce()
    body = {
        "access_token": token,
        "ip_address": creds["ip_address"],
        "nonce": n,
        "secret": whosoff_secret(n, creds["client_secret"]),
        "app_id": creds["app_id"],
    }
    body.update(override)
    return body


def data_headers(creds: dict[str, str], token: str, gzip: bool = True) -> dict[str, str]:
    headers = {
        "Authorization": f"Bearer {token}",
        "app-id": creds["app_id"],
        "Content-Type": "application/json",
    }
    if gzip:
        headers["Accept-Encoding"] = "gzip"
    else:
        headers["Accept-Encoding"] = "identity"
    return headers


# ---- InfinityHR --------------------------------------------------------------------------------------
def soap(method: str, request: dict[str, str], extra: dict[str, str] | None = None) -> bytes:
    parts = "".join(f"<{k}>{v}</{k}>" for k, v in request.items())
    extras = "".join(f"<{k}>{v}</{k}>" for k, v in (extra or {}).items())
    return (
        f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP_NS}"><soap:Body>'
        f'<{method} xmlns="{IHR_NS}"><request>{parts}</request>{extras}</{method}>'
        "</soap:Body></soap:Envelope>"
    ).encode()


def soap_headers(method: str) -> dict[str, str]:
    return {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{IHR_NS}{method}"'}


def parse(body: bytes) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.fromstring(body, parser)


def fault_of(body: bytes) -> tuple[str, str | None]:
    root = parse(body)
    code = root.findtext(".//s:Fault/faultcode", namespaces=NS)
    exc_type = root.findtext(".//s:Fault/detail/ExceptionType", namespaces=NS)
    assert code is not None
    return code, exc_type


# ---- WORKBOX ------------------------------------------------------------------------------------------
def ncp_signature(
    variant: str, secret: str, method: str, uri: str, ts: str, api_key: str, access_key: str
) -> str:
    lines = [f"{method} {uri}", ts] + ([api_key] if variant == "v1" else []) + [access_key]
    digest = hmac.new(secret.encode(), "\n".join(lines).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def workbox_headers(
    creds: dict[str, str],
    method: str,
    uri: str,
    *,
    variant: str = "v1",
    ts: int | None = None,
    header: str | None = None,
) -> dict[str, str]:
    stamp = str(ts if ts is not None else int(time.time() * 1000))
    sig = ncp_signature(
        variant, creds["secret_key"], method, uri, stamp, creds["api_key"], creds["access_key"]
    )
    return {
        "x-ncp-apigw-timestamp": stamp,
        "x-ncp-apigw-api-key": creds["api_key"],
        "x-ncp-iam-access-key": creds["access_key"],
        header or f"x-ncp-apigw-signature-{variant}": sig,
        "Content-Type": "application/json",
    }
