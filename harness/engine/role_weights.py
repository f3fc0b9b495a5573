"""One plain model, many roles: each adapter is merged into the base weights once (by PEFT's own
merge_and_unload), its merged values are kept, and switching role copies them in. A whole fine-tuned
model (a full fine-tune) is a role the same way: its weights are read from its safetensors files, one
tensor at a time, and kept like a merged adapter's, so no second model is ever built.

Why merged: on CPU, PEFT's unmerged LoRA layers add work to every decoding step; generating as the
demo adapter runs at 110 tokens/s merged against 76 unmerged (benchmarks/generation.py), with the
same closeness to float32 either way. Why copies rather than merge/unmerge: unmerging in bf16 does
not give the base weights back bit for bit, so the base role's answers would drift with each switch.
A full fine-tune changes every weight, so its role costs a copy of the model, and the base's values
another (kept once for all roles).
"""
from __future__ import annotations

from pathlib import Path

import torch

from harness.errors import TunegateError
from harness.fingerprints import full_weight_files, is_full_model
from harness.roles import BASE


class RoleWeights:
    def __init__(self, model):
        self.model = model
        self.pristine: dict[str, torch.Tensor] = {}  # base values of every parameter an adapter changes
        self.merged: dict[str, dict[str, torch.Tensor]] = {}  # role -> parameter -> merged value
        self.active = BASE

    @torch.no_grad()
    def add(self, role: str, path: Path) -> None:
        """Keep, as `role`, the parameters that the artifact at `path` changes: a PEFT adapter merged into the
        base weights, or the weights of a whole fine-tuned model folder."""
        self.use(BASE)
        self.merged[role] = self._full_model(Path(path)) if is_full_model(path) else self._merged_adapter(path)

    def _merged_adapter(self, path: Path) -> dict[str, torch.Tensor]:
        from peft import PeftModel

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
        return changed

    def _full_model(self, path: Path) -> dict[str, torch.Tensor]:
        """The fine-tuned values (in the model's dtype) of the parameters that differ from the base's. Keys the
        model has no parameter for are skipped: a tied output head saved under its own name, or buffers."""
        from safetensors import safe_open

        params = dict(self.model.named_parameters())
        changed, found = {}, set()
        for file in full_weight_files(path):
            with safe_open(file, "pt") as f:
                for name in f.keys():
                    if name not in params:
                        continue
                    p = params[name]
                    value = f.get_tensor(name).to(p.dtype)
                    if value.shape != p.shape:
                        raise TunegateError(f"{file}: '{name}' has shape {list(value.shape)}, the base model's is "
                                            f"{list(p.shape)}: a fine-tune of another base; set model.base to it")
                    found.add(name)
                    if not torch.equal(value, p.detach().cpu()):
                        changed[name] = value
                        self.pristine.setdefault(name, p.detach().to("cpu", copy=True))
        if missing := sorted(set(params) - found):
            raise TunegateError(f"{path}: no weight for the base model's '{missing[0]}' ({len(missing)} missing): not "
                                "a fine-tune of the base; set model.base to the model it was trained from")
        return changed

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
