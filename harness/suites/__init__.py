"""The suites: the typed API every suite implements (`harness.suites.api`) and the built-in ones.

`BUILTIN` is the explicit registry of the suites tunegate ships; `harness.suites.registry` adds the
suites of other packages (entry points) and of the user's own repository (`suite = "module:Class"`).
The per-suite pytest files live in `suites/`.
"""
from harness.suites.api import Suite
from harness.suites.behaviour import Behaviour
from harness.suites.bias import Bias
from harness.suites.diversity import Diversity
from harness.suites.golden import Golden
from harness.suites.judge import JudgeSuite
from harness.suites.memorisation import Memorisation
from harness.suites.mmlu import MMLU
from harness.suites.safety import Safety

BUILTIN: dict[str, Suite] = {s.name: s for s in (Golden(), Safety(), MMLU(), Diversity(), Bias(), Behaviour(),
                                                  Memorisation(), JudgeSuite())}

__all__ = ["BUILTIN", "Suite"]
