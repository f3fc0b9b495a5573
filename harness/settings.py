"""The building blocks of the config's tables, shared by the config and the suites' own tables:
`Section` (frozen, unknown keys forbidden) and `OpenAIServer` (the engine's and the judge's server)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Section(BaseModel):
    """A config table: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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


class RegressionGates(Section):
    """Thresholds of a gate that holds the candidate non-inferior to base and champion."""

    margin: float = Field(0.05, ge=0, le=1, description="Largest tolerated worsening vs base/champion.")
    alpha: float = Field(0.05, gt=0, lt=1, description="Significance level of the paired test for a regression.")
