"""Workflow definitions without Django: reading, checking and guard expressions.

Pure Python (no models, no database), so a definition can be checked in an admin form, a
management command or a test alike. See docs/definition-format.md for the format.
"""

from approvals.machine.config import normalize_transitions, state_type
from approvals.machine.durations import DurationError, format_duration, parse_duration
from approvals.machine.expressions import (
    Budget,
    Expression,
    ExpressionError,
    check_expression,
    compile_expression,
    evaluate_guard,
)
from approvals.machine.loader import DefinitionError, dump_document, load_document
from approvals.machine.titles import readable_title, render_title
from approvals.machine.validation import canonical_config, validate_config

__all__ = [
    "Budget",
    "DefinitionError",
    "DurationError",
    "Expression",
    "ExpressionError",
    "canonical_config",
    "check_expression",
    "compile_expression",
    "dump_document",
    "evaluate_guard",
    "format_duration",
    "load_document",
    "normalize_transitions",
    "parse_duration",
    "readable_title",
    "render_title",
    "state_type",
    "validate_config",
]
