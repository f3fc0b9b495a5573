"""Is each conversation well formed: the order of roles, no empty turns, a chat template that renders
it, and its length in tokens against the training `max_length`."""
from __future__ import annotations

from harness.curation.findings import Finding, error, warning
from harness.data.examples import Example


def role_problems(ex: Example) -> list[Finding]:
    """A system turn only first; then user and assistant alternating, starting with the user. Turns
    are named by position (turn 1 is the first), which also reads right for instruction records."""
    found = []
    roles = [m["role"] for m in ex.messages]
    body_start = 1 if roles[0] == "system" else 0
    expected = "user"
    for i, role in enumerate(roles[body_start:], start=body_start):
        if role == "system":
            found.append(error("consistency", ex.origin, f"turn {i + 1} is a system turn; a system prompt can "
                               "only be the first turn: move it there or merge it"))
        elif role != expected:
            found.append(error("consistency", ex.origin, f"turn {i + 1} is {role}, expected {expected}: user and "
                               "assistant turns must alternate, starting with the user; merge or reorder them"))
            break  # one break in the alternation makes every later turn look wrong too
        else:
            expected = "assistant" if role == "user" else "user"
    for i, m in enumerate(ex.messages):
        if m["role"] != "system" and not m["content"].strip():
            found.append(error("consistency", ex.origin, f"turn {i + 1} ({m['role']}) is empty; write it or drop it"))
    return found


def render(ex: Example, tokenizer, system_prompt: str | None, training: bool) -> str:
    """The text the model sees: for training the whole conversation as trained on, for evaluation the
    prompt with the assistant's turn opened."""
    if training:
        return tokenizer.apply_chat_template([*ex.prompt(system_prompt), ex.messages[-1]], tokenize=False)
    return tokenizer.apply_chat_template(ex.prompt(system_prompt), tokenize=False, add_generation_prompt=True)


def token_lengths(examples: list[Example], tokenizer, system_prompt: str | None, training: bool,
                  ) -> tuple[list[int | None], list[Finding]]:
    """Each example's length in tokens after the chat template (None where the template fails), and
    an error for every example the template cannot render."""
    texts, findings = [], []
    for ex in examples:
        try:
            texts.append(render(ex, tokenizer, system_prompt, training))
        except Exception as e:  # noqa: BLE001 - jinja's TemplateError and whatever the template raises
            texts.append(None)
            reason = " ".join(str(e).split()) or type(e).__name__
            findings.append(error("template", ex.origin, f"the chat template cannot render it ({reason}); "
                                  "fix the conversation or use a model whose template accepts it"))
    rendered = [t for t in texts if t is not None]
    # One batched call: the fast tokenizer's batch path is much quicker than one call per text.
    ids = tokenizer(rendered, add_special_tokens=False)["input_ids"] if rendered else []
    lengths, k = [], 0
    for t in texts:
        if t is None:
            lengths.append(None)
        else:
            lengths.append(len(ids[k]))
            k += 1
    return lengths, findings


def truncation(examples: list[Example], lengths: list[int | None], max_length: int) -> list[Finding]:
    """A warning for every training example longer than `max_length` tokens: training cuts its end,
    which is the answer."""
    return [warning("length", ex.origin, f"{n} tokens > training.max_length {max_length}: training would cut "
                    "off the end of the answer; shorten it or raise training.max_length")
            for ex, n in zip(examples, lengths) if n is not None and n > max_length]
