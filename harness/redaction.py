"""Keeping secrets out of what tunegate writes and prints: results.json, reports, the history store,
its own messages and pytest's failure reports of suite tests.

A secret is the value of an environment variable whose name looks secret (OPENAI_API_KEY, HF_TOKEN,
AWS_SECRET_ACCESS_KEY, ...), the password in a URL (`https://user:PASSWORD@host`), a token used as a
URL's user name, or a URL query parameter named like a secret (`?api_key=...`); also a secret's head or
tail next to an ellipsis, where something shortened the text before it was redacted. `current()` returns
the redactor for this process's environment now; `text` and `data` replace what it finds with
`[REDACTED:NAME]` (an environment value) or `[REDACTED]` (URL credentials).
"""
from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from typing import Any, Mapping

MARKER = "[REDACTED]"
# A secret's head or tail at least this long, next to an ellipsis, is taken for the secret cut short.
PARTIAL_LENGTH = 6
_ELLIPSIS = re.compile("(\\.\\.\\.|\u2026)")
# Shorter values are too likely to be ordinary words or numbers (true, 1, EMPTY) to be worth redacting.
MIN_LENGTH = 8
# Words that mark a name (an environment variable, a URL query parameter) as holding a secret. They count
# as whole parts of the name, split at _ - . and camelCase (OPENAI_API_KEY, HF_TOKEN, X-Amz-Signature,
# apiKey), so that PIP_KEYRING_PROVIDER, TOKENIZERS_PARALLELISM, GIT_AUTHOR_NAME or ?keywords= do not.
SECRET_WORDS = frozenset({"key", "keys", "apikey", "token", "tokens", "secret", "secrets", "password", "passwd",
                          "credential", "credentials", "auth", "signature"})
_NAME_PARTS = re.compile(r"[_.\-]+|(?<=[a-z])(?=[A-Z])")
NOT_SECRET_VALUES = frozenset({"disabled", "enabled", "required", "optional", "localhost", "undefined"})

# URL credentials, in one pattern that starts with the literal "://" (which makes its search fast): a
# password (`https://user:PASSWORD@host`, or `https://user:PASSW...` where text was cut short), or a token
# as the user name (`https://ghp_...@github.com`: git hosts accept that; a real user name is rarely 16
# characters or more). Only the secret is replaced.
_URL_CREDENTIALS = re.compile(r"://(?:(?P<user>[^\s:/?#@\[\]\"'<>]*):(?P<password>[^\s/?#@\"'<>]+)"
                              r"(?=@|\.\.\.|\u2026)|[^\s:/?#@\[\]\"'<>]{16,}(?=@))")


def _url_credentials(m: re.Match) -> str:
    user, password = m.group("user"), m.group("password")
    if password is None:
        return f"://{MARKER}"
    if password.isdigit() and not m.string.startswith("@", m.end()):
        return m.group()  # `http://localhost:8000...`: a port where text was cut, not a password
    return f"://{user}:{MARKER}"


# A URL query parameter: the replacement keeps it unless its name looks secret (`?api_key=`, `&token=`,
# `X-Amz-Signature=`).
_QUERY_PARAM = re.compile(r"(?P<sep>[?&])(?P<param>[\w.-]+)=[^&#\s\"'<>]+")


def _query_param(m: re.Match) -> str:
    if not is_secret_name(m.group("param")):
        return m.group()
    return f"{m.group('sep')}{m.group('param')}={MARKER}"


def is_secret_name(name: str) -> bool:
    return any(part.lower() in SECRET_WORDS for part in _NAME_PARTS.split(name))


def is_secret_value(value: str) -> bool:
    """Long enough, not a common word, and not an existing path (SSH_AUTH_SOCK, XAUTHORITY name a
    file; the file may be secret, its path is not, and redacting it would garble every path shown)."""
    value = value.strip()
    if len(value) < MIN_LENGTH or value.lower() in NOT_SECRET_VALUES:
        return False
    return not (value.startswith(("/", "~", "./")) and os.path.exists(os.path.expanduser(value)))


def env_secrets(environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """(value, name) of every secret in `environ`, sorted so the result is a stable cache key."""
    found: dict[str, str] = {}
    for name in sorted(environ):
        value = environ[name]
        if is_secret_name(name) and is_secret_value(value):
            found.setdefault(value, name)  # two names, one value: the first name alphabetically
            found.setdefault(value.strip(), name)
    return tuple(sorted(found.items()))


class Redactor:
    """Replaces known secret values and URL credentials in text and in JSON-like data."""

    def __init__(self, secrets: tuple[tuple[str, str], ...] = ()):
        self.names = dict(secrets)  # value -> environment variable name
        # Longest first: when one secret contains another, the whole of the longer one goes.
        values = sorted(self.names, key=len, reverse=True)
        self.values = re.compile("|".join(map(re.escape, values))) if values else None
        # Values that JSON escaping leaves as they are can be searched for in one json.dumps of the data.
        self._json_safe = all(json.dumps(v, ensure_ascii=False)[1:-1] == v for v in values)

    def _env(self, m: re.Match) -> str:
        return f"[REDACTED:{self.names[m.group()]}]"

    def text(self, text: str) -> str:
        """`text` with every secret replaced by its marker."""
        if self.values is not None:
            text = self.values.sub(self._env, text)
            if "..." in text or "\u2026" in text:
                text = self._cut_short(text)
        if "://" in text:
            text = _URL_CREDENTIALS.sub(_url_credentials, text)
        if "=" in text:
            text = _QUERY_PARAM.sub(_query_param, text)
        return text

    def _cut_short(self, text: str) -> str:
        """A secret that was cut short where text was shortened ("sk-test-d27..." in pytest's repr of a
        long local variable, "...a9f0" at the start of what follows the cut) is still mostly the secret:
        replace a secret's head (PARTIAL_LENGTH characters or more) just before an ellipsis and its tail
        just after one."""
        pieces = _ELLIPSIS.split(text)  # even indices: the text between ellipses; odd: the ellipses
        for i in range(0, len(pieces), 2):
            if i + 1 < len(pieces):
                pieces[i] = self._cut_head(pieces[i])
            if i > 0:
                pieces[i] = self._cut_tail(pieces[i])
        return "".join(pieces)

    def _cut_head(self, piece: str) -> str:
        for value, name in self.names.items():
            end = piece[-(len(value) - 1):]
            start = end.find(value[:PARTIAL_LENGTH])
            while start >= 0:
                if value.startswith(end[start:]):
                    return piece[:len(piece) - len(end) + start] + f"[REDACTED:{name}]"
                start = end.find(value[:PARTIAL_LENGTH], start + 1)
        return piece

    def _cut_tail(self, piece: str) -> str:
        for value, name in self.names.items():
            begin = piece[:len(value) - 1]
            stop = begin.rfind(value[-PARTIAL_LENGTH:])
            while stop >= 0:
                if value.endswith(begin[:stop + PARTIAL_LENGTH]):
                    return f"[REDACTED:{name}]" + piece[stop + PARTIAL_LENGTH:]
                stop = begin.rfind(value[-PARTIAL_LENGTH:], 0, stop + PARTIAL_LENGTH - 1)
        return piece

    def finds(self, text: str) -> bool:
        """Whether `text` holds anything `text()` would replace."""
        if self.values is not None and (self.values.search(text) is not None or (
                ("..." in text or "\u2026" in text) and self._cut_short(text) != text)):
            return True
        if "://" in text and _URL_CREDENTIALS.search(text) is not None:
            return True
        return "=" in text and any(is_secret_name(m.group("param")) for m in _QUERY_PARAM.finditer(text))

    def data(self, obj: Any) -> Any:
        """A copy of JSON-like `obj` (dicts, lists, tuples, strings, numbers) with secrets replaced in
        every string, keys included; `obj` itself when it holds none (the common case: one search of
        its JSON text, about 0.1 s for 5 MB)."""
        if self._json_safe:
            try:
                probe = json.dumps(obj, ensure_ascii=False, default=str)
            except (TypeError, ValueError):
                probe = None
            if probe is not None and not self.finds(probe):
                return obj
        return self._walk(obj)

    def _walk(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {self._walk(k): self._walk(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return type(obj)(self._walk(v) for v in obj)
        return obj


@lru_cache(maxsize=8)
def _redactor(secrets: tuple[tuple[str, str], ...]) -> Redactor:
    return Redactor(secrets)


def current() -> Redactor:
    """The redactor for this process's environment as it is now (compiled once per distinct set of secrets)."""
    return _redactor(env_secrets(os.environ))


def redact(text: str) -> str:
    """`text` without the secrets of this process's environment or URL credentials."""
    return current().text(str(text))


def redact_data(obj: Any) -> Any:
    """JSON-like `obj` without secrets (a copy if anything was replaced)."""
    return current().data(obj)


def redact_test_report(report, redactor: Redactor | None = None) -> None:
    """Redact a pytest test report in place: its failure text (`longrepr`), the xfail reason and the
    captured output and log sections, which the terminal and JUnit XML print.

    A failure representation that holds a secret becomes its redacted plain text: pytest prints a
    string longrepr as it is, so only the colouring of that one traceback is lost.
    """
    r = redactor or current()
    longrepr = getattr(report, "longrepr", None)
    if isinstance(longrepr, tuple):  # a skip: (path, line, reason)
        report.longrepr = tuple(r.text(v) if isinstance(v, str) else v for v in longrepr)
    elif longrepr is not None:
        text = str(longrepr)
        clean = r.text(text)
        if clean != text:
            report.longrepr = clean
    if isinstance(getattr(report, "wasxfail", None), str):
        report.wasxfail = r.text(report.wasxfail)
    sections = getattr(report, "sections", None)
    if sections:
        report.sections = [(r.text(title), r.text(content)) for title, content in sections]
