"""The study config: one TOML file -> typed dataclasses, validated before any work starts.

Validation errors name the offending key with its full path (``attacks[0].eps[2]``), say
what is allowed, and suggest the closest key for typos, like scikit-learn's parameter
checks. Sections whose keys belong to another stage (a model's ``train`` recipe, a mapper
parameter set, persistence settings) are checked by that stage's own validator, imported
when validating: importing this package stays cheap (no torch, no mapper).

Modules: ``sections`` (the dataclass of each section), ``study`` (:class:`StudyConfig`),
``collector`` (:class:`ConfigCheck`, which gathers every problem), ``checks`` (the rules),
``coerce`` (a TOML table -> typed dataclasses), ``toml`` (reading and writing the file),
``load`` (the entry points: :func:`parse_config`, :func:`check_config`, :func:`load_config`).
"""
from advtopo.study.config.checks import (
    DATA_KEYS,
    GRAPH_FILE_MAX,
    MODEL_NAME_KEYS,
    NAME_MAX,
    resolve_checkpoint,
)
from advtopo.study.config.collector import ConfigCheck
from advtopo.study.config.load import (
    check_config,
    demo_config_path,
    load_config,
    parse_config,
)
from advtopo.study.config.sections import (
    MAPPER_ROWS,
    ActivationGraphConfig,
    AttackConfig,
    CaptureConfig,
    DatapathsConfig,
    DatasetConfig,
    ExecutorConfig,
    LayerConfig,
    MapperConfig,
    ModelConfig,
    PersistenceConfig,
    RecoveryConfig,
    SeparabilityConfig,
    StabilityConfig,
    VulnerabilityConfig,
)
from advtopo.study.config.study import StudyConfig
from advtopo.study.config.toml import dumps_toml, read_config_file

__all__ = [
    "DATA_KEYS", "GRAPH_FILE_MAX", "MAPPER_ROWS", "MODEL_NAME_KEYS", "NAME_MAX",
    "ActivationGraphConfig", "AttackConfig", "CaptureConfig", "ConfigCheck", "DatapathsConfig", "DatasetConfig",
    "ExecutorConfig", "LayerConfig", "MapperConfig", "ModelConfig", "PersistenceConfig", "RecoveryConfig",
    "SeparabilityConfig", "StabilityConfig", "StudyConfig", "VulnerabilityConfig",
    "check_config", "demo_config_path", "dumps_toml", "load_config", "parse_config", "read_config_file",
    "resolve_checkpoint",
]
