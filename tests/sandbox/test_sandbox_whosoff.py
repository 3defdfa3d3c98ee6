"""WhosOff: every authentication rule both ways, tokens, renewal, data calls, gzip.

Contract: docs/vendor-contract.md §1.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from syncd.sandbox import Sandbox

from .helpers import credentials_body, data_headers, nonce, token_body


async def login(sb: Sandbox, http: aiohttp.ClientSession, **override: Any) -> tuple[int, dict[str, Any]]:
    creds = sb.credentials["whosoff"]
    headers = {"app-id": override.pop("header_app_id", creds["app_id"])}
    async with http.post(
        f"{sb.whosoff_url}/v4/authenticate/with-credentials",
        json=credentials_body(creds, **override),
        headers=headers,
    ) as resp:
        return resp.status, await resp.json()


async def token(sb: Sandbox, http: aiohttp.ClientSession) -> str:
    status, body = await login(sb, http)
    assert status == 200, body
    return str(body["Data"][0]["token"]["access_token"])


async def renew(
    sb: Sandbox, http: aiohttp.ClientSession, tok: str, **override: Any
) -> tuple[int, dict[str, Any]]:
    creds = sb.credentials["whosoff"]
    async with http.post(
        f"{sb.whosoff_url}/v4/authenticate/with-access-token",
        json=token_body(creds, tok, **override),
        headers={"app-id": creds["app_id"]},
    ) as resp:
        return resp.status, await resp.json()


async def users(
    sb: Sandbox, http: aiohttp.ClientSession, tok: str, status_id: int = 99, gzip: bool = True
) -> tuple[int, dict[str, Any], aiohttp.ClientResponse]:
    async with http.post(
        f"{sb.whosoff_url}/v4/user/retrieve",
        headers=data_headers(sb.credentials["whosoff"], tok, gzip),
        json={"map_type_id": 0, "map_id": 0, "status_id": status_id},
    ) as resp:
        return resp.status, await resp.json(), resp


def code(body: dict[str, Any]) -> str:
    return str(body["Errors"][0]["Code"])


async def test_with_credentials_ok(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    status, body = await login(sandbox, http)
    assert status == 200 and body["Errors"] == []
    tok = body["Data"][0]["token"]
    expiry = datetime.strptime(tok["token_expiry_date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert 3500 < (expiry - datetime.now(UTC)).total_seconds() <= 3600
    assert body["Data"][0]["user"]["email_address"] == "api@acme.example"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"password": "wrong"}, "AUTH001"),
        ({"username": "nobody@acme.example"}, "AUTH001"),
        ({"secret": "0" * 128}, "AUTH002"),
        ({"ip_address": "10.0.0.9"}, "AUTH004"),
        ({"app_id": "SBXAPP0000000002"}, "AUTH005"),
        ({"header_app_id": "OTHERAPP00000001"}, "AUTH005"),
        ({"nonce": "too-short"}, "AUTH006"),
        ({"nonce": "x" * 33}, "AUTH006"),
    ],
)
async def test_with_credentials_rejections(
    sandbox: Sandbox, http: aiohttp.ClientSession, override: dict[str, Any], expected: str
) -> None:
    status, body = await login(sandbox, http, **override)
    assert (status, code(body), body["Data"]) == (400, expected, [])
    assert sandbox.request_log.count(vendor="whosoff", code=expected) == 1


async def test_uppercase_secret_is_rejected(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    creds = sandbox.credentials["whosoff"]
    body = credentials_body(creds)
    body["secret"] = body["secret"].upper()
    async with http.post(
        f"{sandbox.whosoff_url}/v4/authenticate/with-credentials",
        json=body,
        headers={"app-id": creds["app_id"]},
    ) as resp:
        assert (resp.status, code(await resp.json())) == (400, "AUTH002")


async def test_reused_nonce(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    n = nonce()
    assert (await login(sandbox, http, nonce=n))[0] == 200
    status, body = await login(sandbox, http, nonce=n)
    assert (status, code(body)) == (400, "AUTH003")


async def test_bad_json_and_missing_field(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    creds = sandbox.credentials["whosoff"]
    url = f"{sandbox.whosoff_url}/v4/authenticate/with-credentials"
    async with http.post(
        url, data=b"{not json", headers={"app-id": creds["app_id"], "Content-Type": "application/json"}
    ) as resp:
        assert (resp.status, code(await resp.json())) == (400, "REQ001")
    body = credentials_body(creds)
    del body["ip_address"]
    async with http.post(url, json=body, headers={"app-id": creds["app_id"]}) as resp:
        assert (resp.status, code(await resp.json())) == (400, "REQ001")


async def test_data_calls_with_token(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    tok = await token(sandbox, http)
    status, body, resp = await users(sandbox, http, tok)
    assert status == 200 and resp.headers["Content-Encoding"] == "gzip"
    assert len(body["Data"]) == len(sandbox.company.whosoff_users)
    user = body["Data"][0]
    assert set(user) == {
        "user_id",
        "staff_code",
        "title",
        "first_name",
        "middle_name",
        "last_name",
        "email_contact",
        "department_id",
        "user_type_id",
        "status_id",
        "employment_started_date",
        "employment_ended_date",
        "work_telephone",
        "mobile_telephone",
        "active_directory_username",
    }
    active = [u for u in sandbox.company.whosoff_users.values() if u.status_id == 1]
    assert len((await users(sandbox, http, tok, 1))[1]["Data"]) == len(active)
    disabled = (await users(sandbox, http, tok, 0))[1]["Data"]
    assert disabled and all(u["status_id"] == 0 for u in disabled)
    status, body, resp = await users(sandbox, http, tok, gzip=False)
    assert status == 200 and "Content-Encoding" not in resp.headers
    async with http.get(
        f"{sandbox.whosoff_url}/v4/department/retrieve/",
        headers=data_headers(sandbox.credentials["whosoff"], tok),
    ) as r:
        deps = await r.json()
        assert r.status == 200 and r.headers["Content-Encoding"] == "gzip"
        assert set(deps["Data"][0]) == {"department_id", "name", "min_user"}
        assert isinstance(deps["Data"][0]["department_id"], int)


async def test_department_path_keeps_trailing_slash(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    tok = await token(sandbox, http)
    async with http.get(
        f"{sandbox.whosoff_url}/v4/department/retrieve",
        headers=data_headers(sandbox.credentials["whosoff"], tok),
    ) as r:
        assert r.status == 404


async def test_user_retrieve_body_rules(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    tok = await token(sandbox, http)
    status, body, _ = await users(sandbox, http, tok, status_id=2)
    assert (status, code(body)) == (400, "REQ001")


async def test_unknown_and_expired_tokens(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    status, body, _ = await users(sandbox, http, "not-a-token")
    assert (status, code(body)) == (400, "TOK004")
    sandbox.whosoff.token_lifetime = 0.0  # issued already expired
    tok = await token(sandbox, http)
    status, body, _ = await users(sandbox, http, tok)
    assert (status, code(body)) == (400, "TOK004")
    async with http.post(
        f"{sandbox.whosoff_url}/v4/user/retrieve", json={"map_type_id": 0, "map_id": 0, "status_id": 99}
    ) as r:
        assert (r.status, code(await r.json())) == (400, "AUTH005")


async def test_renewal_semantics(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    sandbox.whosoff.token_lifetime = 0.0
    expired = await token(sandbox, http)
    sandbox.whosoff.token_lifetime = 3600.0
    status, body = await renew(sandbox, http, expired)  # an expired (latest) token renews
    assert status == 200
    renewed = body["Data"][0]["token"]["access_token"]
    assert renewed != expired
    # the older token is no longer the most recent one of the login
    assert (await renew(sandbox, http, expired))[0] == 400
    # renew a live token: the renewed-from token stays valid until its own expiry
    status, body = await renew(sandbox, http, renewed)
    newest = body["Data"][0]["token"]["access_token"]
    assert (await users(sandbox, http, renewed))[0] == 200
    assert (await users(sandbox, http, newest))[0] == 200
    # past the renewal window: TOK004, the client must use its credentials again
    sandbox.whosoff.renew_window = 0.0
    status, body = await renew(sandbox, http, newest)
    assert (status, code(body)) == (400, "TOK004")
    # renewal also checks nonce and secret
    sandbox.whosoff.renew_window = 86400.0
    status, body = await renew(sandbox, http, newest, secret="f" * 128)
    assert (status, code(body)) == (400, "AUTH002")


async def test_revoke_forces_credentials(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    tok = await token(sandbox, http)
    async with http.post(f"{sandbox.control_url}/whosoff/revoke") as r:
        assert (await r.json())["revoked"] == 1
    status, body, _ = await users(sandbox, http, tok)
    assert (status, code(body)) == (400, "TOK004")
    status, body = await renew(sandbox, http, tok)
    assert (status, code(body)) == (400, "TOK004")
    assert (await users(sandbox, http, await token(sandbox, http)))[0] == 200
    assert sandbox.request_log.count(vendor="whosoff", op="user/retrieve", code="TOK004") == 1
