"""A run's inputs, validated before anything trains: the config, the data splits, the enabled suites
with their settings and items, what must not leak into training, and the hashes that key the adapter."""
from __future__ import annotations

from functools import cached_property
from pathlib import Path

from harness.config import Config, load_config
from harness.data.examples import Example, check_leakage, load_jsonl, split_train_val
from harness.errors import TunegateError
from harness.fingerprints import file_sha256, json_sha256
from harness.suites.api import Suite, SuiteSettings


class RunInputs:
    def __init__(self, config_path: Path):
        self.config_path = Path(config_path)
        self._items: dict[str, dict[str, list]] = {}

    @cached_property
    def config(self) -> Config:
        return load_config(self.config_path)

    @cached_property
    def workspace(self) -> Path:
        return self.config.path(self.config.workspace.dir)

    def path(self, p: Path) -> Path:
        return self.config.path(p)

    @cached_property
    def splits(self) -> tuple[list[Example], list[Example]]:
        data = self.config.data
        train = load_jsonl(self.config.path(data.train))
        if data.val is not None:
            return train, load_jsonl(self.config.path(data.val))
        return split_train_val(train, data.val_fraction, self.config.training.seed)

    def train_examples(self) -> list[Example]:
        return self.splits[0]

    # ---- suites ---------------------------------------------------------------------------
    @cached_property
    def known_suites(self) -> dict[str, tuple[Suite, SuiteSettings]]:
        return self.config.suites.all()

    def suite(self, name: str) -> tuple[Suite, SuiteSettings]:
        try:
            return self.known_suites[name]
        except KeyError:
            raise TunegateError(f"suite {name!r} is not known to {self.config_path}; add a [suites.{name}] table "
                                f"naming its class (suite = \"module:Class\"), or install the package that "
                                f"provides it; known suites: {', '.join(self.known_suites)}") from None

    def enabled_suites(self) -> list[str]:
        """The suites that run: enabled in the config, and not off for want of what they need."""
        return [name for name in self.known_suites if name not in self.off_suites()]

    def off_suites(self) -> dict[str, str]:
        """Each suite that does not run, with the reason and the key that turns it on."""
        off = {}
        for name, (suite, settings) in self.known_suites.items():
            if not settings.enabled:
                off[name] = f"disabled in the config (suites.{name}.enabled = false)"
            elif reason := suite.off_reason(settings):
                off[name] = reason
        return off

    def gates_off(self, suite: str) -> dict[str, str]:
        """Each gate of a suite that is off, with the reason: by its settings (an opt-in bar left unset) or,
        for an enabled suite, for want of the user's data (reads its data: may raise TunegateError)."""
        s, settings = self.suite(suite)
        off = s.gates_off(settings)
        if suite in self.enabled_suites():
            off = {**off, **s.data_gates_off(settings, self)}
        return off

    def active_gates(self, suite: str) -> tuple[str, ...]:
        s, _ = self.suite(suite)
        off = self.gates_off(suite)
        return tuple(g for g in s.gates if g not in off)

    def items(self, suite: str) -> dict[str, list]:
        """A suite's items per test parameter, loaded and validated once."""
        if suite not in self._items:
            s, settings = self.suite(suite)
            self._items[suite] = s.load_items(settings, self)
        return self._items[suite]

    def expected_gates(self) -> set[str]:
        return {self.suite(s)[0].gate_name(g) for s in self.enabled_suites() for g in self.active_gates(s)}

    def leakage_sets(self, skip: frozenset[Path] = frozenset()) -> dict[str, list[Example]]:
        """Each enabled suite's items that must not appear in the training data, except suites that read
        a file in `skip` (resolved paths: files the data check reads as files of its own)."""
        sets = {}
        for name in self.enabled_suites():
            suite, settings = self.suite(name)
            paths = {self.path(p).resolve() for p in suite.data_paths(settings).values()}
            if not paths & skip:
                sets[name] = suite.leakage_examples(settings, self.items(name))
        return sets

    def validate(self) -> None:
        """Load every enabled suite's items and the splits, and refuse training data that leaks."""
        train, val = self.splits
        for name in self.enabled_suites():
            self.items(name)
        check_leakage(train, [val, *self.leakage_sets().values()])

    # ---- hashes ---------------------------------------------------------------------------
    @cached_property
    def data_hashes(self) -> dict[str, str]:
        """The hash of every file the run reads: train, val, and the files of every suite whose items were
        loaded (a suite that reads another's items, as the judge reads the golden set, counts both)."""
        data = self.config.data
        loaded = [*self.enabled_suites(), *(s for s in self._items if s not in self.enabled_suites())]
        suites = {k: p for suite, settings in map(self.suite, loaded) for k, p in suite.data_paths(settings).items()}
        paths = {"train": data.train, "val": data.val, **suites}
        return {k: file_sha256(self.path(p)) for k, p in paths.items() if p is not None}

    @cached_property
    def config_hash(self) -> str:
        plugins = {name: settings.model_dump(mode="json") for name, (_, settings) in self.known_suites.items()
                   if name not in type(self.config.suites).model_fields}
        dumped = self.config.model_dump(mode="json")
        return json_sha256({**dumped, "plugin_suites": plugins} if plugins else dumped)
