"""Data transformation: typed rules, compiled once per batch, applied in order.

`DataTransformationService` is the entry point; `compile_rules` and `RuleBook` serve
callers that already hold the rules (benchmarks, the sync loop with cached rules).
"""

from .compile import (
    CompiledRule,
    Pipeline,
    RuleBook,
    RuleChange,
    RuleFailure,
    RuleSpec,
    TransformResult,
    compile_rules,
)
from .rules import InvalidRule, RuleParams, dump_params, parse_params
from .schemas import DryRun, RuleIn, RulePatch
from .service import DataTransformationService, RuleNotFound

__all__ = [
    "CompiledRule",
    "DataTransformationService",
    "DryRun",
    "InvalidRule",
    "Pipeline",
    "RuleBook",
    "RuleChange",
    "RuleFailure",
    "RuleIn",
    "RuleNotFound",
    "RuleParams",
    "RulePatch",
    "RuleSpec",
    "TransformResult",
    "compile_rules",
    "dump_params",
    "parse_params",
]
