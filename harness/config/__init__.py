"""The run's configuration: one TOML file validated by frozen pydantic models (`schema`), loaded by
`loader`. The names below are the package's public interface."""
from harness.config.loader import CONFIG_ENV, DEFAULT_CONFIG, check_confined, config_path, load_config
from harness.config.schema import (
    Config,
    DataConfig,
    DpoConfig,
    EngineConfig,
    LoraConfig,
    ModelConfig,
    OpenAIEngine,
    RegistryConfig,
    Suites,
    TrainingConfig,
    VLLMEngineConfig,
    WorkspaceConfig,
)

__all__ = ["CONFIG_ENV", "DEFAULT_CONFIG", "Config", "DataConfig", "DpoConfig", "EngineConfig", "LoraConfig",
           "ModelConfig", "OpenAIEngine", "RegistryConfig", "Suites", "TrainingConfig", "VLLMEngineConfig",
           "WorkspaceConfig", "check_confined", "config_path", "load_config"]
