"""One plain model, many roles: each adapter is merged into the base weights once (by PEFT's own
merge_and_unload), its merged values are kept, and switching role copies them in.

Why merged: on CPU, PEFT's unmerged LoRA layers add work to every decoding step; generating as the
demo adapter runs at 110 tokens/s merged against 76 unmerged (benchmarks/generation.py), with the
same closeness to float32 either way. Why copies rather than merge/unmerge: unmerging in bf16 does
not give the base weights back bit for bit, so the base role's answers would drift with each switch.
"""
from __future__ import annotations

from pathlib import Path

import torch

BASE = "base"


class RoleWeights:
    def __init__(self, model):
        self.model = model
        self.pristine: dict[str, torch.Tensor] = {}  # base values of every parameter an adapter changes
        self.merged: dict[str, dict[str, torch.Tensor]] = {}  # role -> parameter -> merged value
        self.active = BASE

    @torch.no_grad()
    def add(self, role: str, path: Path) -> None:
        """Merge the PEFT adapter at `path` and keep the parameters it changed, as `role`."""
        from peft import PeftModel

        self.use(BASE)
        before = {n: p.detach().to("cpu", copy=True) for n, p in self.model.named_parameters()}
        merged = PeftModel.from_pretrained(self.model, str(path), is_trainable=False).merge_and_unload()
        if merged is not self.model:  # PEFT restores the model it wrapped; anything else would be a copy
            raise RuntimeError("PEFT's merge_and_unload returned a new model; tunegate keeps one copy")
        changed = {}
        for name, p in self.model.named_parameters():
            if not torch.equal(p.detach().cpu(), before[name]):
                changed[name] = p.detach().to("cpu", copy=True)
                self.pristine.setdefault(name, before[name])
                p.copy_(before[name])
        self.merged[role] = changed

    @torch.no_grad()
    def use(self, role: str) -> None:
        """Put `role`'s weights in place (BASE: the untouched base weights)."""
        if role == self.active:
            return
        params = dict(self.model.named_parameters())
        values = self.merged[role] if role != BASE else {}
        for name, base_value in self.pristine.items():
            params[name].copy_(values.get(name, base_value))
        self.active = role
