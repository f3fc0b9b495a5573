"""Personal data in text: emails, phone numbers, credit card numbers, IBANs, SSN-like numbers and
IP addresses, found with their character spans and replaced by typed placeholders.

Each detector is a pattern plus a validation, tuned so that ordinary support text (names, ticket
and order numbers, versions, dates, times, prices, DOIs) is not flagged:

- email: any address except the reserved placeholder domains (RFC 2606 / 6761: example.com,
  example.net, example.org and their subdomains, and the .example, .test, .invalid and .localhost
  top-level domains), which by definition belong to nobody;
- phone: an international number (`+` country code, 8-15 digits), a North American one
  (`(202) 555-0143`, `202-555-0143`) or a national one with a trunk 0 (`020 7946 0958`), written
  with one kind of separator; dates are not phone numbers;
- credit card: 13-19 digits (spaces or dashes between groups) that start like a card (2-6) and
  pass the Luhn check;
- IBAN: a country's IBAN of that country's length whose mod-97 checksum holds;
- SSN: `AAA-GG-SSSS` (or with spaces) with the area, group and serial ranges the SSA issues;
- IP address: a valid public (globally routed) IPv4 or IPv6 address not written as a version
  (`v1.2.3.4`); private, loopback and documentation ranges identify no one.
"""
from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass

# What a match is replaced with by `scrub` (and `tunegate data clean`).
PLACEHOLDERS = {
    "email": "[EMAIL]",
    "phone": "[PHONE]",
    "credit_card": "[CREDIT_CARD]",
    "iban": "[IBAN]",
    "ssn": "[SSN]",
    "ip_address": "[IP_ADDRESS]",
}

# IBAN length per country (SWIFT IBAN registry).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18,
    "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
    "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}
PLACEHOLDER_DOMAINS = ("example.com", "example.net", "example.org")
PLACEHOLDER_TLDS = ("example", "test", "invalid", "localhost")

_EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@((?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+"
                    r"[A-Za-z]{2,63})(?![\w-])")
_IBAN = re.compile(r"(?<![A-Za-z0-9])([A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30})(?![A-Za-z0-9])")
_CARD = re.compile(r"(?<![\w.,-])[2-6]\d{3}(?:[ -]?\d){9,15}(?![\w-]|[.,]\d)")
_SSN = re.compile(r"(?<![\w.,/-])(\d{3})([ -])(\d{2})\2(\d{4})(?![\w/-]|[.,]\d)")
_PHONE = re.compile(
    r"(?<![\w.,/#+-])(?:"
    r"\+\d{1,3}(?:[ .-]?(?:\(\d{1,4}\)|\d{1,4})){2,6}"  # international: +44 20 7946 0958
    r"|\(\d{3}\) ?\d{3}[ .-]\d{4}"  # (202) 555-0143
    r"|\d{3}([ .-])\d{3}\1\d{4}"  # 202-555-0143, 202.555.0143
    r"|0[1-9]\d{0,3}([ .-])\d{2,4}(?:\2\d{2,4}){1,3}"  # national, trunk 0: 020 7946 0958, 06 12 34 56 78
    r")(?![\w/-]|[.,]\d)"
)
_DATE_START = re.compile(r"\d{1,2}[./-]\d{1,2}[./-]\d{2,4}(?!\d)")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?=[0-9A-Fa-f]*:[0-9A-Fa-f]*:)[0-9A-Fa-f:]{2,39}(?![\w:])")
_VERSION_BEFORE = re.compile(r"(?:\bv|\bversion|\bver\.?|\brelease|\bbuild)\s*$", re.I)


@dataclass(frozen=True)
class PiiMatch:
    kind: str  # a key of PLACEHOLDERS
    start: int
    end: int
    text: str

    def masked(self) -> str:
        """The match with its middle starred, so the output that reports PII does not repeat it."""
        t = self.text
        keep = 2 if len(t) > 6 else 1
        return t[:keep] + "*" * (len(t) - 2 * keep) + t[-keep:]


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    iban = candidate.replace(" ", "")
    if IBAN_LENGTHS.get(iban[:2]) != len(iban):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _email_ok(m: re.Match) -> bool:
    domain = m.group(1).lower()
    if domain.rsplit(".", 1)[-1] in PLACEHOLDER_TLDS:
        return False
    return not any(domain == d or domain.endswith("." + d) for d in PLACEHOLDER_DOMAINS)


def _card_ok(m: re.Match) -> bool:
    text = m.group(0)
    if " " in text and "-" in text:  # one kind of separator, as cards are printed
        return False
    return luhn_ok(_digits(text))


def _ssn_ok(m: re.Match) -> bool:
    area, group, serial = int(m.group(1)), int(m.group(3)), int(m.group(4))
    return 0 < area < 900 and area != 666 and group > 0 and serial > 0


def _phone_ok(m: re.Match) -> bool:
    text = m.group(0)
    n = len(_digits(text))
    if text.startswith("+"):
        return 8 <= n <= 15
    if _DATE_START.match(text):
        return False
    return 9 <= n <= 11


def _ip_ok(m: re.Match, text: str) -> bool:
    if _VERSION_BEFORE.search(text, 0, m.start()):
        return False
    try:
        address = ipaddress.ip_address(m.group(0))
    except ValueError:
        return False
    return address.is_global


# Checked in this order; a later detector's match that overlaps an earlier one is dropped (an IBAN's
# digits are not also a phone number).
_DETECTORS = (
    ("email", _EMAIL, lambda m, t: _email_ok(m)),
    ("iban", _IBAN, lambda m, t: iban_ok(m.group(1))),
    ("credit_card", _CARD, lambda m, t: _card_ok(m)),
    ("ssn", _SSN, lambda m, t: _ssn_ok(m)),
    ("ip_address", _IPV4, _ip_ok),
    ("ip_address", _IPV6, _ip_ok),
    ("phone", _PHONE, lambda m, t: _phone_ok(m)),
)
_ANY_DIGIT_OR_AT = re.compile(r"[\d@]")


def find_pii(text: str) -> list[PiiMatch]:
    """Every PII match in `text`, in order of position, none overlapping."""
    if not _ANY_DIGIT_OR_AT.search(text):  # every detector needs a digit or an '@': most texts stop here
        return []
    found: list[PiiMatch] = []
    for kind, pattern, valid in _DETECTORS:
        for m in pattern.finditer(text):
            if valid(m, text) and not any(f.start < m.end() and m.start() < f.end for f in found):
                found.append(PiiMatch(kind, m.start(), m.end(), m.group(0)))
    return sorted(found, key=lambda f: f.start)


def scrub(text: str) -> tuple[str, Counter]:
    """`text` with every PII match replaced by its typed placeholder, and the count per kind."""
    matches = find_pii(text)
    out, pos = [], 0
    for m in matches:
        out.append(text[pos:m.start])
        out.append(PLACEHOLDERS[m.kind])
        pos = m.end
    out.append(text[pos:])
    return "".join(out), Counter(m.kind for m in matches)
