#!/usr/bin/env python3
"""Generate the intent example's data: short requests to a home assistant, each labelled with one intent.

Everything here is written for tunegate (templates, names, songs, places are invented or generic);
this script only combines it, with a fixed seed, into:

    train.jsonl   ~240 labelled requests (the answer is the intent label alone)
    val.jsonl     ~24, from phrasings train never uses
    golden.jsonl  ~48, from phrasings neither train nor val uses, each checked with an `exact` rubric
                  on its label and sliced by `channel` (voice transcript or typed) and `register`
                  (casual, polite, terse): who asks, and how. The bias suite gates the pass-rate gap
                  between the values of each slice key; the intent is the answer, not a slice.

Every phrasing (template) belongs to exactly one of the three files, and a golden or val request is
kept only if it is far from every training request (character 5-gram Jaccard below 0.5, the measure
`tunegate data check` uses, whose leakage error starts at 0.7).

Run from anywhere:  python examples/intent/generate.py
The output is byte-for-byte deterministic (standard library only).
"""
from __future__ import annotations

import json
import random
import re
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20261208
SIZES = {"train": 240, "val": 24, "golden": 48}
MAX_CROSS_SIMILARITY = 0.5
MAX_SAME_FILE_SIMILARITY = 0.8  # data check warns of near-duplicates in one file at 0.9

# Slot values. Songs and artists are invented.
SLOTS = {
    "minutes": ["five", "ten", "12", "15", "20", "25", "40", "three", "eight", "90"],
    "food": ["the pasta", "the rice", "the eggs", "the bread", "the lentils", "the cookies", "the tea", "the roast"],
    "artist": ["Velvet Harbor", "The Paper Kites Club", "Mina Sol", "Northbound Choir", "Loud Orchard",
               "DJ Pemberly", "the Glass Foxes", "Aurelio Banks"],
    "genre": ["jazz", "lo-fi", "classical piano", "eighties pop", "bluegrass", "ambient", "reggae", "folk"],
    "city": ["Lisbon", "Denver", "Osaka", "Nairobi", "Glasgow", "Lima", "Perth", "Montreal", "Krakow", "Hanoi"],
    "day": ["tomorrow", "this weekend", "on Friday", "tonight", "on Sunday morning", "later today"],
    "item": ["oat milk", "batteries", "dish soap", "two lemons", "coffee filters", "bin bags", "basil",
             "a birthday card", "toothpaste", "frozen peas"],
    "list": ["shopping list", "grocery list", "hardware store list", "list for the market"],
    "room": ["kitchen", "living room", "bedroom", "hallway", "office", "porch", "bathroom", "garage"],
    "level": ["30 percent", "half", "full brightness", "a warm glow", "the lowest setting"],
    "contact": ["Grandma Rosa", "my brother Tomas", "Aunt Priya", "Dr. Okafor's office", "my landlord", "Jun",
                "the babysitter", "Coach Mel"],
    "task": ["water the plants", "take the bins out", "book the dentist", "pay the electricity bill",
             "pick up the dry cleaning", "renew my passport", "feed the cat", "back up my laptop"],
    "when": ["at 6 pm", "in an hour", "tomorrow morning", "on Monday at nine", "before I leave for work",
             "at noon", "next Tuesday", "this evening"],
}

# Per intent: (register, template) phrasings. The split below gives each phrasing to one file only.
PHRASINGS = {
    "set_timer": [
        ("casual", "hey can you start a {minutes} minute timer"),
        ("casual", "timer for {minutes} minutes please, {food} is on"),
        ("casual", "gimme a {minutes} min countdown"),
        ("polite", "Could you please set a timer for {minutes} minutes?"),
        ("polite", "Would you mind timing {minutes} minutes for {food} for me?"),
        ("polite", "I'd like a countdown of {minutes} minutes, please."),
        ("terse", "timer {minutes} min"),
        ("terse", "{minutes} minute timer"),
        ("casual", "let me know when {minutes} minutes are up, I've got {food} in the oven"),
        ("polite", "Please alert me in {minutes} minutes so {food} doesn't burn."),
        ("terse", "countdown {minutes} minutes"),
        ("casual", "ok start timing {food}, {minutes} minutes"),
    ],
    "play_music": [
        ("casual", "put on some {genre} would ya"),
        ("casual", "play that new {artist} album"),
        ("casual", "i'm in the mood for {genre}, play something"),
        ("polite", "Could you play some music by {artist}, please?"),
        ("polite", "Would you please put on a {genre} playlist?"),
        ("polite", "I'd love to hear {artist} right now, if you could."),
        ("terse", "play {artist}"),
        ("terse", "{genre} music"),
        ("casual", "crank up some {artist} in here"),
        ("polite", "Please start a radio station based on {artist}."),
        ("terse", "shuffle {genre}"),
        ("casual", "something chill, like {genre}, thanks"),
    ],
    "get_weather": [
        ("casual", "is it gonna rain in {city} {day}"),
        ("casual", "do i need a jacket {day}"),
        ("casual", "what's it like outside in {city} right now"),
        ("polite", "Could you tell me the forecast for {city} {day}?"),
        ("polite", "Would you let me know how warm it will be {day}?"),
        ("polite", "I'm travelling to {city}; what weather should I expect {day}?"),
        ("terse", "weather {city}"),
        ("terse", "forecast {day}"),
        ("casual", "how cold is {city} gonna get {day}"),
        ("polite", "Please check whether it will snow in {city} {day}."),
        ("terse", "{city} temperature"),
        ("casual", "should i bring an umbrella to {city} {day}"),
    ],
    "add_to_list": [
        ("casual", "stick {item} on the {list}"),
        ("casual", "we're out of {item}, add it to the {list}"),
        ("casual", "don't let me forget {item}, put it on my {list}"),
        ("polite", "Could you add {item} to my {list}, please?"),
        ("polite", "Would you please put {item} on the {list}?"),
        ("polite", "I need {item}; kindly note it on my {list}."),
        ("terse", "add {item} to {list}"),
        ("terse", "{list}: {item}"),
        ("casual", "oh and {item} for the {list} too"),
        ("polite", "Please include {item} on the {list} for this week."),
        ("terse", "{item} on {list}"),
        ("casual", "toss {item} onto my {list} real quick"),
    ],
    "control_lights": [
        ("casual", "kill the lights in the {room}"),
        ("casual", "can you dim the {room} to {level}"),
        ("casual", "it's way too dark in the {room}"),
        ("polite", "Could you switch on the {room} lights, please?"),
        ("polite", "Would you set the {room} lamps to {level}?"),
        ("polite", "Please turn off every light in the {room}."),
        ("terse", "{room} lights on"),
        ("terse", "lights {room} {level}"),
        ("casual", "make the {room} a bit brighter yeah"),
        ("polite", "I'd like the {room} lighting at {level}, please."),
        ("terse", "{room} lamps off"),
        ("casual", "flip the {room} lights off for me"),
    ],
    "call_contact": [
        ("casual", "ring {contact}"),
        ("casual", "get {contact} on the phone"),
        ("casual", "can you dial {contact} real quick"),
        ("polite", "Could you please call {contact}?"),
        ("polite", "Would you place a call to {contact} for me?"),
        ("polite", "I'd like to speak to {contact}; please phone them."),
        ("terse", "call {contact}"),
        ("terse", "phone {contact}"),
        ("casual", "give {contact} a buzz"),
        ("polite", "Please start a video call with {contact}."),
        ("terse", "dial {contact} now"),
        ("casual", "hook me up with {contact} on speaker"),
    ],
    "set_reminder": [
        ("casual", "remind me to {task} {when}"),
        ("casual", "don't let me forget to {task} {when}"),
        ("casual", "nudge me {when} about needing to {task}"),
        ("polite", "Could you remind me to {task} {when}, please?"),
        ("polite", "Would you set a reminder {when} to {task}?"),
        ("polite", "Please make sure I remember to {task} {when}."),
        ("terse", "reminder: {task} {when}"),
        ("terse", "remind {task} {when}"),
        ("casual", "ping me {when} so i {task}"),
        ("polite", "I need a reminder {when}: {task}."),
        ("terse", "{task} reminder {when}"),
        ("casual", "yo remind me {when}, gotta {task}"),
    ],
}
INTENTS = list(PHRASINGS)
FILLERS = ["um", "uh", "okay", "so", "hey wren"]


def normalise(text: str) -> str:
    """The form tunegate's duplicate and leakage checks compare (case, punctuation, spacing ignored)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


def shingles(text: str) -> frozenset[str]:
    t = normalise(text)
    return frozenset(t[i:i + 5] for i in range(max(1, len(t) - 4)))


def jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b)


def fill(template: str, rng: random.Random) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: rng.choice(SLOTS[m.group(1)]), template)


def as_channel(text: str, channel: str, rng: random.Random) -> str:
    """A typed request stays as written; a voice one reads like a speech-to-text transcript:
    lower case, no punctuation, sometimes a filler word first."""
    if channel == "typed":
        return text
    spoken = re.sub(r"[^\w\s'%-]", "", text.lower())
    if rng.random() < 0.4:
        spoken = f"{rng.choice(FILLERS)} {spoken}"
    return " ".join(spoken.split())


def split_phrasings(rng: random.Random) -> dict[str, list[tuple[str, str, str]]]:
    """Each intent's phrasings: 3 to golden, 1 to val, the rest to train; golden gets one of each register."""
    out = {"train": [], "val": [], "golden": []}
    for intent, phrasings in PHRASINGS.items():
        by_register = {}
        for register, template in phrasings:
            by_register.setdefault(register, []).append(template)
        for templates in by_register.values():
            rng.shuffle(templates)
        for register, templates in by_register.items():
            out["golden"].append((intent, register, templates.pop()))
        val_register = rng.choice(sorted(by_register))
        out["val"].append((intent, val_register, by_register[val_register].pop()))
        for register, templates in by_register.items():
            out["train"].extend((intent, register, t) for t in templates)
    return out


def requests(phrasings, n: int, rng: random.Random, avoid: list[frozenset], seen: set[str]):
    """n distinct requests, intents balanced, channels alternating, none close to `avoid` or to each other."""
    by_intent = {i: [p for p in phrasings if p[0] == i] for i in INTENTS}
    rows, own, attempts = [], [], 0
    while len(rows) < n:
        attempts += 1
        if attempts > 200 * n:
            raise SystemExit(f"could not generate {n} distinct requests; add slot values or phrasings")
        intent = INTENTS[len(rows) % len(INTENTS)]
        _, register, template = rng.choice(by_intent[intent])
        channel = ("voice", "typed")[len(rows) // len(INTENTS) % 2]
        text = as_channel(fill(template, rng), channel, rng)
        key = normalise(text)
        if key in seen:
            continue
        sh = shingles(text)
        if any(jaccard(sh, other) >= MAX_CROSS_SIMILARITY for other in avoid):
            continue
        if any(jaccard(sh, other) >= MAX_SAME_FILE_SIMILARITY for other in own):
            continue
        seen.add(key)
        own.append(sh)
        rows.append((intent, register, channel, text))
    return rows


def main() -> None:
    rng = random.Random(SEED)
    split = split_phrasings(rng)
    seen: set[str] = set()
    train = requests(split["train"], SIZES["train"], rng, [], seen)
    train_sets = [shingles(t) for *_, t in train]
    val = requests(split["val"], SIZES["val"], rng, train_sets, seen)
    golden = requests(split["golden"], SIZES["golden"], rng, train_sets, seen)

    def chat(prefix, i, row):
        intent, register, channel, text = row
        return {"id": f"{prefix}-{i:04d}", "messages": [{"role": "user", "content": text},
                                                         {"role": "assistant", "content": intent}],
                "meta": {"intent": intent, "channel": channel, "register": register}}

    write(HERE / "train.jsonl", [chat("train", i + 1, r) for i, r in enumerate(train)])
    write(HERE / "val.jsonl", [chat("val", i + 1, r) for i, r in enumerate(val)])
    write(HERE / "golden.jsonl", [
        {"id": f"intent-{i + 1:03d}", "messages": [{"role": "user", "content": text}], "reference": intent,
         "rubric": [{"type": "exact", "value": intent}],
         "slice": {"channel": channel, "register": register}}
        for i, (intent, register, channel, text) in enumerate(golden)])


def write(path: Path, rows: list) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {path.name}: {len(rows)} lines")


if __name__ == "__main__":
    main()
