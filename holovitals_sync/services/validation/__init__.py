"""Validation of FHIR resources: structure, US Core required elements, reference
integrity and custom rules; strict or lenient per connection."""

from .batch import BatchValidation, persist_errors, validate_batch, validate_resource
from .custom import CustomRule, CustomValidator, FhirPathAssertion, PatternCheck, RangeCheck
from .issues import Layer, ValidationIssue
from .references import batch_patients, check_references
from .required import REQUIRED, check_required
from .structural import validate_structure

__all__ = [
    "REQUIRED",
    "BatchValidation",
    "CustomRule",
    "CustomValidator",
    "FhirPathAssertion",
    "Layer",
    "PatternCheck",
    "RangeCheck",
    "ValidationIssue",
    "batch_patients",
    "check_references",
    "check_required",
    "persist_errors",
    "validate_batch",
    "validate_resource",
    "validate_structure",
]
