"""Leak scan: every secret, token, session id, signature, SSN and personal e-mail in play, searched for
in every log and every database row a campaign produced.

:class:`LeakWatch` hooks a running (in-process) sandbox to learn what was issued and sent:

* WhosOff access tokens: ``sb.whosoff.tokens`` (the sandbox keeps every token it issued);
* InfinityHR session ids: the sandbox forgets expired sessions, so ``sb.infinityhr.sessions`` is
  replaced by a dict that also remembers every id ever stored in it;
* WORKBOX signatures: ``sb.workbox.authenticate`` is wrapped to record the signature header of every
  request it sees;
* the sandbox credentials' secret values, and every SSN and personal e-mail of the company
  (:meth:`LeakWatch.observe` is called after each batch of HR changes, so hires and deletions count).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from syncd.sandbox import Sandbox

#: credential fields that are secrets (the others are identifiers: ids, user names, urls)
SECRET_FIELDS = {
    "infinityhr": ("vendor_password",),
    "whosoff": ("client_secret", "password"),
    "workbox": ("secret_key", "api_key"),
}
_RUN = re.compile(r"[A-Za-z0-9+/=_\-]+")
_SSN = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+")


class _RecordingDict(dict[str, Any]):
    def __init__(self, seen: set[str], *args: Any) -> None:
        super().__init__(*args)
        self.seen = seen
        seen.update(self)

    def __setitem__(self, key: str, value: Any) -> None:
        self.seen.add(key)
        super().__setitem__(key, value)


@dataclass
class LeakWatch:
    sb: Sandbox
    sessions: set[str] = field(default_factory=set)
    signatures: set[str] = field(default_factory=set)
    ssns: set[str] = field(default_factory=set)
    personal_emails: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        ihr = self.sb.infinityhr
        ihr.sessions = _RecordingDict(self.sessions, ihr.sessions)
        wb = self.sb.workbox
        original = wb.authenticate

        def authenticate(request: web.Request) -> None:
            for name in ("x-ncp-apigw-signature-v1", "x-ncp-apigw-signature-v2"):
                value = request.headers.get(name)
                if value:
                    self.signatures.add(value)
            original(request)

        wb.authenticate = authenticate  # type: ignore[method-assign]
        self.observe()

    def observe(self) -> None:
        """Remember the company's current SSNs and personal e-mails (call after HR changes)."""
        for e in self.sb.company.employees.values():
            if isinstance(e.ssn, str) and e.ssn:
                self.ssns.add(e.ssn)
            if isinstance(e.personal_email, str) and e.personal_email:
                self.personal_emails.add(e.personal_email.lower())

    def values(self) -> dict[str, set[str]]:
        creds = {
            self.sb.credentials[vendor][name] for vendor, names in SECRET_FIELDS.items() for name in names
        }
        return {
            "credential": creds,
            "whosoff token": set(self.sb.whosoff.tokens),
            "infinityhr session": set(self.sessions),
            "workbox signature": set(self.signatures),
            "ssn": set(self.ssns),
            "personal email": set(self.personal_emails),
        }

    def counts(self) -> dict[str, int]:
        return {label: len(v) for label, v in self.values().items()}

    def scan(self, texts: Mapping[str, str]) -> list[tuple[str, str, str]]:
        """(what, where, value excerpt) for every secret found in ``texts`` (name → text)."""
        return scan(self.values(), texts)


def scan(values: Mapping[str, Iterable[str]], texts: Mapping[str, str]) -> list[tuple[str, str, str]]:
    by_len: dict[int, dict[str, str]] = {}
    emails: dict[str, str] = {}
    ssns: dict[str, str] = {}
    plain: dict[str, str] = {}
    for label, vals in values.items():
        for v in vals:
            if label == "ssn":
                ssns[v] = label
            elif label == "personal email":
                emails[v.lower()] = label
            elif _RUN.fullmatch(v):
                by_len.setdefault(len(v), {})[v] = label
            else:
                plain[v] = label
    hits: list[tuple[str, str, str]] = []
    for where, text in texts.items():
        for m in _SSN.finditer(text):
            if m.group() in ssns:
                hits.append(("ssn", where, m.group()[:4] + "…"))
        for m in _EMAIL.finditer(text):
            if m.group().lower() in emails:
                hits.append(("personal email", where, m.group()[:4] + "…"))
        for m in _RUN.finditer(text):
            run = m.group()
            for n, table in by_len.items():
                for i in range(len(run) - n + 1):
                    label = table.get(run[i : i + n])
                    if label:
                        hits.append((label, where, run[i : i + 4] + "…"))
        for v, label in plain.items():
            if v in text:
                hits.append((label, where, v[:4] + "…"))
    return hits
