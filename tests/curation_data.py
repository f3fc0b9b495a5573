"""Data files with planted problems, for the data-check tests: each planted problem is listed with
the file, line and kind of finding it must produce."""
from __future__ import annotations

import json
from pathlib import Path

TOPICS = [
    ("How do I export my whole Recipes notebook as one PDF so I can print it for my family?",
     "Open the Recipes notebook, click the three dots next to its name, choose Export, pick PDF and save the file."),
    ("Our company card expired and the Team workspace is locked for all of our staff this morning.",
     "Go to Settings > Billing, click Payment method, add the new card and the workspace unlocks within minutes."),
    ("The Windows app freezes for about ten seconds every time I type in a long meeting note.",
     "Update to the latest version from Help > Check for updates; if it still freezes, turn off spell check."),
    ("Can I share an entire notebook with my team instead of going note by note every single time?",
     "Yes: right-click the notebook, choose Share, add your teammates' addresses and pick view or edit access."),
    ("I edited notes offline during a trip, and when I reconnected the older versions overwrote my changes.",
     "Open the note, choose History, and restore the version from your trip; offline edits are kept for 30 days."),
    ("Where do I turn on two-factor authentication for my account, and what app do I need for it?",
     "Go to Settings > Security, click Enable two-factor authentication and scan the QR code with an authenticator app."),
    ("How do I see the list of keyboard shortcuts, especially the one for creating a new note quickly?",
     "Press Ctrl+/ (Cmd+/ on a Mac) to open the shortcut list; a new note is Ctrl+N (Cmd+N)."),
    ("Please add nested tags, like work/clients, so I can organise my tags in a proper hierarchy.",
     "Thanks for the idea; nested tags are on our roadmap and I have added your vote to the request."),
    ("The confirmation link for my new account email address says token invalid every single time I click it.",
     "Links expire after 24 hours; go to Settings > Account and click Resend confirmation to get a fresh one."),
    ("How do I print a single note together with all of its attachments in one go?",
     "Open the note, choose File > Print, and tick Include attachments before you print."),
]


def chat(i: int, user: str, answer: str, **extra) -> dict:
    return {"id": f"ex-{i}", "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}],
            **extra}


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


PII = {  # kind -> a sentence carrying one, planted in a training example
    "email": "You can reach me at maria.lopez@gmail.com if anything is unclear.",
    "phone": "Call me back on +44 20 7946 0958 after five.",
    "credit card": "The card on file is 4111 1111 1111 1111.",
    "iban": "Refund it to DE89 3704 0044 0532 0130 00 please.",
    "ssn": "My SSN is 219-09-9999 if you need to verify me.",
    "ip address": "The login came from 81.2.69.142 which is not me.",
}


def planted_project(root: Path) -> dict[tuple[str, str], str]:
    """Write train.jsonl, val.jsonl, golden.jsonl and prompts.jsonl (a diversity suite's data) under
    `root`; return the planted problems: (file:line, kind) -> what was planted."""
    train = [chat(i, q, a, meta={"task": "help" if i % 2 else "triage"}) for i, (q, a) in enumerate(TOPICS)]
    planted: dict[tuple[str, str], str] = {}

    def plant(row, kind: str, what: str, file: str = "train.jsonl", rows=train):
        rows.append(row)
        planted[(f"{file}:{len(rows)}", kind)] = what

    q, a = TOPICS[1]
    plant(chat(100, q.upper().replace(",", ""), a + "  "), "duplicate", "line 2 in capitals, without commas")
    q, a = TOPICS[2]
    plant(chat(101, q.replace("freezes", "hangs"), a), "near_duplicate", "line 3 with one word changed")
    for k, (kind, sentence) in enumerate(PII.items()):
        plant(chat(110 + k, f"Please update my account details. {sentence}", "Thanks, the details are updated."),
              "pii", kind)
    plant('{"id": "broken", "messages": [', "schema", "invalid JSON")
    plant({"id": "bot", "messages": [{"role": "user", "content": "Hi"}, {"role": "bot", "content": "Hello"}]},
          "schema", "a role that does not exist")
    plant({"id": "order", "messages": [{"role": "user", "content": "First question about sync?"},
                                       {"role": "user", "content": "And a second one about tags?"},
                                       {"role": "assistant", "content": "Both are in Settings."}]},
          "consistency", "two user turns in a row")
    plant({"id": "empty", "messages": [{"role": "user", "content": "Is there a dark mode?"},
                                       {"role": "assistant", "content": " "},
                                       {"role": "user", "content": "Hello?"},
                                       {"role": "assistant", "content": "Yes, under Settings > Appearance."}]},
          "consistency", "an empty assistant turn")
    plant(chat(120, "Summarise this meeting for me. " + " ".join(TOPICS[k][0] for k in range(10)), "A long summary."),
          "length", "longer than max_length")
    write_jsonl(root / "train.jsonl", train)

    val = [chat(200 + i, q + " Thank you.", a) for i, (q, a) in enumerate(
        [("Is there a way to change the colour of a notebook cover?", "Right-click the notebook and choose Colour."),
         ("Can I get a receipt for last month's payment?", "Go to Settings > Billing > Invoices and download it.")])]
    q, a = TOPICS[3]
    plant(chat(210, "Hi, Kofi here. " + q, a), "leakage", "train line 4 with a greeting added", "val.jsonl", val)
    write_jsonl(root / "val.jsonl", val)

    rubric = [{"type": "contains", "value": "Settings"}]
    golden = [{"id": f"g{i}", "messages": [{"role": "user", "content": q}], "rubric": rubric}
              for i, q in enumerate(["How do I archive a notebook I no longer use?",
                                     "Why is the search not finding words inside my PDF attachments?"])]
    q, _ = TOPICS[4]
    plant({"id": "g-leak", "messages": [{"role": "user", "content": q.replace("a trip", "a long trip")}],
           "rubric": rubric}, "leakage", "train line 5's question", "golden.jsonl", golden)
    write_jsonl(root / "golden.jsonl", golden)

    prompts = [{"id": "d0", "prompt": "Write a short poem about autumn."}]
    plant({"id": "d-leak", "prompt": TOPICS[5][0]}, "leakage", "train line 6's question", "prompts.jsonl", prompts)
    write_jsonl(root / "prompts.jsonl", prompts)
    return planted


def project_config(root: Path, model_dir: Path, max_length: int = 256) -> Path:
    """A config for the planted project: the tiny model's tokenizer, the golden and diversity suites on
    the planted files, every other suite off."""
    off = "".join(f"[suites.{s}]\nenabled = false\n" for s in ("safety", "mmlu", "bias", "behaviour", "memorisation"))
    path = root / "tunegate.toml"
    path.write_text(f"""
[model]
base = "{model_dir}"
[data]
train = "train.jsonl"
val = "val.jsonl"
[training]
max_length = {max_length}
[suites.golden]
path = "golden.jsonl"
[suites.diversity]
path = "prompts.jsonl"
{off}""")
    return path
