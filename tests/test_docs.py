"""The documentation stays true to the code: the configuration reference is the generated one, the
README stays short, and every relative link in README.md and docs/ reaches a file (and a heading)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from harness.config import reference as config_reference

ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 250

LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.MULTILINE)
FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto: ...


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def without_code(text: str) -> str:
    """The Markdown outside fenced blocks and code spans, where links are links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def links(text: str) -> list[str]:
    prose = without_code(text)
    return LINK.findall(prose) + REFERENCE.findall(prose)


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file: lower case, punctuation dropped, spaces
    as hyphens, a repeated anchor numbered -1, -2 ..."""
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", markdown).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def test_configuration_reference_is_generated_from_the_config_models():
    checked_in = ROOT / "docs" / "configuration.md"
    assert checked_in.exists(), f"docs/configuration.md is missing; generate it: {config_reference.REGENERATE}"
    assert checked_in.read_text(encoding="utf-8") == config_reference.render(), (
        "docs/configuration.md differs from the config models' fields; regenerate it with "
        f"`{config_reference.REGENERATE}` and commit the result"
    )


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}); move reference material into docs/")


@pytest.mark.parametrize("doc", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_reaches_a_file(doc: Path):
    broken = []
    for target in links(doc.read_text(encoding="utf-8")):
        if EXTERNAL.match(target):
            continue
        path_part, _, fragment = target.partition("#")
        path_part = path_part.split("?", 1)[0]
        dest = (doc.parent / path_part).resolve() if path_part else doc
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif not dest.is_relative_to(ROOT):
            broken.append(f"{target}: outside the repository")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest.read_text(encoding="utf-8")):
            broken.append(f"{target}: no heading with the anchor #{fragment}")
    assert not broken, f"{doc.relative_to(ROOT)}: broken links:\n" + "\n".join(broken)


# ---- the generator itself, on a small model ----------------------------------------------------

class _Gates(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    min_rate: float = Field(0.7, ge=0, le=1, description="The bar | with a pipe.")


class _Suite(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    path: Path = Field(Path("data/items.jsonl"), description="Items.")
    files: tuple[Path, ...] = Field((Path("a.jsonl"), Path("b.jsonl")), description="More items.")
    mode: Literal["fast", "exact"] = Field("exact", description="How.")
    limit: int | None = Field(None, ge=1, description="At most this many.")
    gates: _Gates = Field(default_factory=_Gates, description="Its gates.")


class _Server(BaseModel):
    url: str = Field(description="Where.")


class _Root(BaseModel):
    name: str = Field("demo", description="A top-level key.")
    flag: bool = Field(False, description="A switch.")
    suite: _Suite = Field(default_factory=_Suite, description="One suite.")
    server: _Server | None = Field(None, description="An optional server.")
    root: Path = Field(Path("."), exclude=True, description="Set by the loader.")


def test_render_walks_nested_models_into_toml_tables():
    text = config_reference.render(_Root)
    assert "## Top level" in text
    assert '| `name` | string | `"demo"` | A top-level key. |' in text
    assert "| `flag` | boolean | `false` | A switch. |" in text
    assert "## `[suite]`" in text and "## `[suite.gates]`" in text and "## `[server]`" in text
    assert '| `suite.path` | path | `"data/items.jsonl"` | Items. |' in text
    assert '| `suite.files` | array of paths | `["a.jsonl", "b.jsonl"]` | More items. |' in text
    assert '| `suite.mode` | `"fast"` or `"exact"` | `"exact"` | How. |' in text
    assert "| `suite.limit` | integer, >= 1 | *unset* | At most this many. |" in text
    assert "| `suite.gates.min_rate` | float, >= 0, <= 1 | `0.7` | The bar \\| with a pipe. |" in text
    assert "| `server` | optional table, absent by default | | see [`[server]`](#server) |" in text
    assert "| `server.url` | string | *required* | Where. |" in text
    assert "root" not in text.split("## Tables", 1)[1]  # excluded fields are not part of the file


def test_render_defaults_to_the_run_config_and_its_links_resolve():
    text = config_reference.render()
    assert "## `[suites.golden.gates]`" in text and "`suites.golden.gates.min_pass_rate`" in text
    assert "`root`" not in text
    for target in links(text):
        assert target.startswith("#") and target[1:] in anchors(text), target


def test_main_writes_what_render_returns(tmp_path, capsys):
    out = tmp_path / "configuration.md"
    assert config_reference.main(["--write", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == config_reference.render()
    assert config_reference.main([]) == 0
    assert capsys.readouterr().out == config_reference.render()
