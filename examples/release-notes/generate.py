#!/usr/bin/env python3
"""Generate the release-notes example's data: a terse changelog line in, one plain-English sentence
for users out, for Kestrel, a FICTIONAL calendar app.

Everything here is written for tunegate (app, areas, changes, ticket numbers are invented); this
script only combines it, with a fixed seed, into:

    train.jsonl   240 changelog lines with the sentence users should read
    val.jsonl     24 held-out lines
    golden.jsonl  48 held-out lines. They carry no `slice`: the kind of change and the style of the line
                  describe the input, not a group of users whose pass rates should match, so the bias
                  suite's slice-gap gates stay off (train and val keep both in `meta`).

A change is an (area, kind, detail) triple, written as a changelog line in one of three styles (a
conventional commit, a tracker ticket, a release bullet). Val and golden changes never occur in
train in any style, and a val or golden line is kept only if it is far from every training line
(character 5-gram Jaccard below 0.5, the measure `tunegate data check` uses; its leakage error
starts at 0.7).

A golden answer passes when it reads like its reference (`rouge_l` >= 0.5) and names both the part
of the app and the change (two `contains` checks). ROUGE-L alone cannot tell them apart: the
reference of the same change in another part of the app, which train holds, scores 0.8-0.9.

Run from anywhere:  python examples/release-notes/generate.py
The output is byte-for-byte deterministic (standard library only).
"""
from __future__ import annotations

import json
import random
import re
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20261209
SIZES = {"train": 240, "golden": 48, "val": 24}
MAX_CROSS_SIMILARITY = 0.5
MAX_SAME_FILE_SIMILARITY = 0.8  # data check warns of near-duplicates in one file at 0.9
ROUGE_L_MIN = 0.5

# (code in the changelog, what users call it, the words a correct sentence must contain)
AREAS = [
    ("reminders", "reminders", "reminders"), ("recur", "repeating events", "repeating events"),
    ("share", "shared calendars", "shared calendars"), ("invites", "event invitations", "invitations"),
    ("weekview", "the week view", "week view"), ("monthview", "the month view", "month view"),
    ("search", "search", "search"), ("widget", "the home-screen widget", "widget"),
    ("attach", "event attachments", "attachments"), ("holidays", "public holidays", "holidays"),
    ("tasks", "the task list", "task list"), ("tz", "time zone settings", "time zone settings"),
    ("notif", "notifications", "notifications"), ("agenda", "the agenda", "agenda"),
    ("colors", "calendar colours", "colours"), ("bdays", "birthdays", "birthdays"),
    ("import", "calendar import", "import"), ("vc", "video call links", "video call links"),
]
SINGULAR = {"the week view", "the month view", "search", "the home-screen widget", "the task list", "the agenda",
            "calendar import"}

# kind -> (terse detail, sentence template, the words a correct sentence must contain). In a
# template {area} is the area ({Area} capitalised), and {s}, {is} and {it} agree with it.
DETAILS = {
    "crash": [
        ("crash on empty title", "Kestrel no longer crashes in {area} when an event has no title.", "title"),
        ("crash on rotate", "Kestrel no longer crashes in {area} when you rotate your device.", "rotate"),
        ("crash w/ emoji in name", "Kestrel no longer crashes in {area} when a name contains an emoji.", "emoji"),
        ("OOM on low-mem devices", "Kestrel no longer crashes in {area} on phones that are low on memory.", "memory"),
        ("crash after tz change", "Kestrel no longer crashes in {area} after you travel to another time zone.",
         "travel"),
        ("crash when offline", "Kestrel no longer crashes in {area} when you have no internet connection.",
         "internet"),
    ],
    "bug": [
        ("off-by-one day near midnight", "{Area} no longer show{s} the wrong day for events close to midnight.",
         "midnight"),
        ("stale data after sync", "{Area} now show{s} your latest changes right after a sync.", "sync"),
        ("dup entries", "{Area} no longer show{s} some items twice.", "twice"),
        ("wrong sort order", "{Area} now list{s} items in the right order.", "order"),
        ("blank in dark theme", "{Area} {is} no longer blank when dark mode is on.", "dark mode"),
        ("edits lost on background", "{Area} no longer lose{s} your edits when you switch to another app.", "edits"),
    ],
    "speed": [
        ("2x faster load", "{Area} now open{s} about twice as fast.", "twice as fast"),
        ("-40% memory", "{Area} now use{s} less memory, so Kestrel runs more smoothly on older phones.",
         "less memory"),
        ("lazy-load on scroll", "{Area} now load{s} as you scroll, so {it} appear{s} faster.", "scroll"),
        ("cache results", "{Area} now remember{s} recent results, so {it} respond{s} instantly the second time.",
         "recent results"),
        ("batch network calls", "{Area} now use{s} less mobile data.", "mobile data"),
    ],
    "feature": [
        ("add undo", "You can now undo changes in {area}.", "undo"),
        ("kbd shortcuts", "You can now use {area} with keyboard shortcuts.", "keyboard"),
        ("screen reader labels", "{Area} now work{s} better with screen readers.", "screen reader"),
        ("large text support", "{Area} now follow{s} your phone's text size setting.", "text size"),
        ("drag n drop", "You can now drag and drop items in {area}.", "drag"),
        ("export csv", "You can now export {area} as a spreadsheet file.", "export"),
    ],
    "language": [
        ("add de strings", "{Area} {is} now available in German.", "German"),
        ("add ja strings", "{Area} {is} now available in Japanese.", "Japanese"),
        ("add pt-BR strings", "{Area} {is} now available in Brazilian Portuguese.", "Portuguese"),
        ("add pl strings", "{Area} {is} now available in Polish.", "Polish"),
        ("fix RTL layout", "{Area} now display{s} correctly in right-to-left languages such as Arabic and Hebrew.",
         "right-to-left"),
    ],
}
COMMIT_TYPE = {"crash": "fix", "bug": "fix", "speed": "perf", "feature": "feat", "language": "i18n"}
TICKET_VERB = {"crash": "fixed", "bug": "fixed", "speed": "done", "feature": "shipped", "language": "merged"}
STYLES = ("commit", "ticket", "bullet")


def normalise(text: str) -> str:
    """The form tunegate's duplicate and leakage checks compare (case, punctuation, spacing ignored)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


def shingles(text: str) -> frozenset[str]:
    t = normalise(text)
    return frozenset(t[i:i + 5] for i in range(max(1, len(t) - 4)))


def jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b)


def changelog_line(style: str, kind: str, code: str, detail: str, rng: random.Random) -> str:
    number = rng.randint(1000, 9999)
    if style == "commit":
        return f"{COMMIT_TYPE[kind]}({code}): {detail} (#{number})"
    if style == "ticket":
        return f"[KST-{number}] {code} - {detail} - {TICKET_VERB[kind]}"
    return f"* v{rng.randint(3, 5)}.{rng.randint(0, 19)}.{rng.randint(0, 9)} {code}: {detail}"


def sentence(template: str, area: str) -> str:
    one = area in SINGULAR
    return template.format_map({"area": area, "Area": area[0].upper() + area[1:], "s": "s" if one else "",
                                "is": "is" if one else "are", "it": "it" if one else "they"})


def main() -> None:
    rng = random.Random(SEED)
    kinds = list(DETAILS)
    changes = {kind: [(area, detail) for area in AREAS for detail in DETAILS[kind]] for kind in kinds}
    for pool in changes.values():
        rng.shuffle(pool)
    rows: dict[str, list] = {name: [] for name in SIZES}
    own: dict[str, list[frozenset]] = {name: [] for name in SIZES}

    def take(name: str, avoid: list[frozenset]) -> None:
        """Kinds in turn, styles in turn; each change goes to one file only."""
        turn = 0
        while len(rows[name]) < SIZES[name]:
            kind = kinds[turn % len(kinds)]
            turn += 1
            if not changes[kind]:
                if not any(changes.values()):
                    raise SystemExit(f"ran out of changes for {name}; add areas or details")
                continue
            (code, area, area_key), (detail, template, detail_key) = changes[kind].pop()
            style = STYLES[len(rows[name]) % len(STYLES)]
            line = changelog_line(style, kind, code, detail, rng)
            sh = shingles(line)
            if any(jaccard(sh, o) >= MAX_CROSS_SIMILARITY for o in avoid) or \
                    any(jaccard(sh, o) >= MAX_SAME_FILE_SIMILARITY for o in own[name]):
                continue
            own[name].append(sh)
            rows[name].append((kind, style, line, sentence(template, area), (area_key, detail_key)))

    take("train", [])
    take("golden", own["train"])
    take("val", own["train"])

    def chat(prefix, i, row):
        kind, style, line, answer, _ = row
        return {"id": f"{prefix}-{i:04d}", "messages": [{"role": "user", "content": line},
                                                         {"role": "assistant", "content": answer}],
                "meta": {"kind": kind, "style": style}}

    write(HERE / "train.jsonl", [chat("train", i + 1, r) for i, r in enumerate(rows["train"])])
    write(HERE / "val.jsonl", [chat("val", i + 1, r) for i, r in enumerate(rows["val"])])
    write(HERE / "golden.jsonl", [
        {"id": f"note-{i + 1:03d}", "messages": [{"role": "user", "content": line}], "reference": answer,
         "rubric": [{"type": "rouge_l", "min": ROUGE_L_MIN}, *({"type": "contains", "value": k} for k in keys)]}
        for i, (kind, style, line, answer, keys) in enumerate(rows["golden"])])


def write(path: Path, rows: list) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {path.name}: {len(rows)} lines")


if __name__ == "__main__":
    main()
