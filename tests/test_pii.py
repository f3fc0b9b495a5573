"""PII detection: every kind found in the formats people write it in, and none of the numbers support
text is full of (tickets, versions, dates, prices, DOIs) mistaken for it."""
import json

import pytest

from harness.curation.pii import PLACEHOLDERS, find_pii, iban_ok, luhn_ok, scrub

FOUND = [
    ("Write to maria.lopez@gmail.com today", "email", "maria.lopez@gmail.com"),
    ("cc: j_o+tag@mail.co.uk.", "email", "j_o+tag@mail.co.uk"),
    ("Call +44 20 7946 0958 after 5", "phone", "+44 20 7946 0958"),
    ("my mobile is +491701234567", "phone", "+491701234567"),
    ("US office (202) 555-0143.", "phone", "(202) 555-0143"),
    ("or 202-555-0143 any day", "phone", "202-555-0143"),
    ("or 202.555.0143 any day", "phone", "202.555.0143"),
    ("Ring 020 7946 0958 please", "phone", "020 7946 0958"),
    ("portable 06 12 34 56 78", "phone", "06 12 34 56 78"),
    ("Visa 4111 1111 1111 1111 exp 12/27", "credit_card", "4111 1111 1111 1111"),
    ("card 5500-0000-0000-0004", "credit_card", "5500-0000-0000-0004"),
    ("amex 378282246310005", "credit_card", "378282246310005"),
    ("IBAN GB82 WEST 1234 5698 7654 32 for the refund", "iban", "GB82 WEST 1234 5698 7654 32"),
    ("pay DE89370400440532013000", "iban", "DE89370400440532013000"),
    ("SSN 123-45-6789 on file", "ssn", "123-45-6789"),
    ("ssn: 219 09 9999", "ssn", "219 09 9999"),
    ("login from 81.2.69.142.", "ip_address", "81.2.69.142"),
    ("from 2a00:1450:4001:82a::200e", "ip_address", "2a00:1450:4001:82a::200e"),
]


@pytest.mark.parametrize("text, kind, match", FOUND)
def test_each_kind_is_found_with_its_span(text, kind, match):
    got = find_pii(text)
    assert [(m.kind, m.text) for m in got] == [(kind, match)]
    assert text[got[0].start:got[0].end] == match


NOT_PII = [
    "Hello, this is Ji-woo Choi in Auckland. Where do I turn on 2FA?",
    "Ticket #4821-3390, order 12345678, invoice INV-2024-00017, case 555123",
    "Version 5.10.2 and v1.2.3.4 and build 10.0.19045.3803 of the Windows app",
    "It broke on 2024-01-15 at 10:30:45, again on 01.02.2023 10:30 and 12/06/2025",
    "We have 60 staff, paid $1,234.56 (EUR 1.234,56) for 12 months, 2007-2008 season",
    "doi 10.1177/1948550620982703, isbn 978-0-19-934037-8, https://example.org/a/2015/954027",
    "Write to jane@example.com, bob@mail.example.org, admin@shop.test or x@host.invalid",
    "Internal hosts 10.0.0.12, 192.168.1.20, 127.0.0.1, docs 203.0.113.7, 2001:db8::1, ::1",
    "Card ending 4111 1111 1111 1112 fails Luhn; GB82 WEST 1234 5698 7654 33 fails mod 97",
    "SSN-shaped but never issued: 000-12-3456, 666-12-3456, 912-34-5678, 123-00-4567",
    "Blood pressure 120/80, ratio 9279-647, pages 141-176, 3:2, 1 000 000 users",
]


@pytest.mark.parametrize("text", NOT_PII)
def test_ordinary_numbers_are_not_pii(text):
    assert find_pii(text) == []


def test_no_fixture_text_is_flagged(repo_root):
    """Every string in every data file of the repository (demo, packaged suite data, sensitivity recipes): the
    clean data must give zero false alarms."""
    def strings(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from strings(v)

    files = sorted(f for folder in ("fixtures", "harness/defaults") for f in (repo_root / folder).rglob("*.jsonl"))
    assert len(files) >= 15
    seen, hits = 0, []
    for path in files:
        for lineno, line in enumerate(path.read_text().splitlines(), start=1):
            for text in strings(json.loads(line)):
                seen += 1
                hits += [(path.name, lineno, m.kind, m.text) for m in find_pii(text)]
    assert seen > 30_000 and hits == []


def test_scrub_replaces_each_match_with_its_typed_placeholder():
    text = "Mail maria@gmail.com, call +44 20 7946 0958, card 4111111111111111, IP 81.2.69.142."
    out, counts = scrub(text)
    assert out == "Mail [EMAIL], call [PHONE], card [CREDIT_CARD], IP [IP_ADDRESS]."
    assert counts == {"email": 1, "phone": 1, "credit_card": 1, "ip_address": 1}
    assert find_pii(out) == [] and set(PLACEHOLDERS) == {"email", "phone", "credit_card", "iban", "ssn", "ip_address"}


def test_checksums():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82WEST12345698765432") and not iban_ok("GB82WEST1234569876543")  # one short for GB
    assert not iban_ok("XX82WEST12345698765432")  # no such country


def test_masked_form_does_not_repeat_the_value():
    (m,) = find_pii("maria.lopez@gmail.com")
    assert m.masked() == "ma*****************om" and "lopez" not in m.masked()
