"""FHIRPath expressions: checked strictly when a rule is saved, compiled once per batch.

fhirpathpy's own parser silently recovers from syntax errors (an unbalanced expression
may evaluate to the whole resource), so the check here parses with a listener that
raises, then evaluates once against a bare resource to catch unknown functions and wrong
arities, which fhirpathpy only reports at evaluation time.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import fhirpathpy
from antlr4 import CommonTokenStream, InputStream
from antlr4.error.ErrorListener import ErrorListener
from fhirpathpy.models import models
from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer
from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser

Evaluator = Callable[[dict[str, Any]], list[Any]]
R4_MODEL = models["r4"]


class FhirPathError(ValueError):
    """The expression is not valid FHIRPath (or uses what fhirpathpy does not implement)."""


class _Raise(ErrorListener):
    def syntaxError(self, recognizer, offendingSymbol, line, column, msg, e):  # noqa: N802
        # antlr lists every token it expected; the first clause is the useful part.
        raise FhirPathError(f"syntax error at column {column}: {msg.split(' expecting')[0]}")


def _parse_strict(expression: str) -> None:
    lexer = FHIRPathLexer(InputStream(expression))
    lexer.removeErrorListeners()
    lexer.addErrorListener(_Raise())
    parser = FHIRPathParser(CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser.addErrorListener(_Raise())
    parser.entireExpression()


# Rules are compiled once per batch; the same few expressions come back batch after batch,
# and parsing one with antlr costs milliseconds. Both functions are pure, so cache them.
@lru_cache(maxsize=512)
def check(expression: str, resource_type: str = "Resource") -> None:
    """Raise `FhirPathError` with a clear message if `expression` cannot be used."""
    if not expression or not expression.strip():
        raise FhirPathError("expression is empty")
    _parse_strict(expression)
    try:
        fhirpathpy.compile(expression, R4_MODEL)({"resourceType": resource_type})
    except Exception as exc:  # fhirpathpy raises bare Exception for unknown functions
        raise FhirPathError(f"cannot evaluate: {exc}") from None


@lru_cache(maxsize=512)
def compile_expression(expression: str) -> Evaluator:
    """An evaluator for an expression already accepted by `check`."""
    return fhirpathpy.compile(expression, R4_MODEL)
