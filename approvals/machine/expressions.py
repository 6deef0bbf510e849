"""Guard and assign expressions: a sandboxed CEL subset evaluated with celpy.

Expressions are written by admins and evaluated against data typed by requesters, so they
run in CEL's interpreter (no Python ``eval``/``exec``, not even celpy's transpiler, which
``exec``s generated code). A bare name is a top-level key of the instance context;
``event`` is the data sent with the event being tried and always shadows a context key of
the same name.

Numbers: JSON has one number type but CEL has two (int and double) and refuses to mix
them. Here ints stay ints and floats stay doubles, but every operator that takes two
numbers of different kinds converts the int to a double first, and ``==``/``!=`` compare
values of different kinds as plain "not equal" (CEL's heterogeneous equality). A result
that is a double with a whole value (``1.0``) comes back as the int ``1``, because JSON
cannot tell them apart and ``revisions + 1`` must store ``1``. Division of two ints
truncates, as in CEL (``7 / 2 == 3``); write ``7 / 2.0`` or ``double(x) / 2`` for a
fraction. Division by zero is an error for doubles too (CEL would give infinity, which JSON
cannot hold).

Budget: evaluation runs while a decision holds its request's row lock, so it is bounded. A
`Budget` counts steps (a name, literal or call read, an operator or method applied; a
macro's body once per element; joining, comparing and storing lists and text by their size)
and the wall time spent evaluating; a built list, map or text has a size limit. What can be
known before anything runs (macros nested too deep, macros over literal lists that would
take too many steps) is refused by `check_expression`, which validation uses.
"""

from __future__ import annotations

import contextvars
import datetime
import difflib
import functools
import json
import math
import re
import threading
import time
from collections.abc import Callable, Collection, Mapping
from decimal import Decimal
from typing import Any

import celpy
import lark
import re2
from celpy import celtypes
from celpy.celparser import CELParseError
from celpy.evaluation import Activation, CELEvalError, Evaluator

from approvals.machine.durations import format_duration

__all__ = [
    "Budget",
    "Expression",
    "ExpressionError",
    "check_expression",
    "compile_expression",
    "evaluate_guard",
    "guard_problem",
]

# Guards are a line or two; the caps keep a pasted blob or a pathological nesting from
# blowing the interpreter's recursion (celpy walks the tree recursively).
MAX_SOURCE_LENGTH = 2000
MAX_TREE_DEPTH = 300

_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_SAFE_INT = 2**53

# The evaluation budget (docs/definition-format.md). Steps are counted the same on every
# machine; the wall time is the backstop for a machine under load and for steps that are slow
# one by one. celpy evaluates some 25,000 steps per second of CPU, so a full budget of steps
# costs about 0.4 s of CPU time.
MAX_STEPS = 10_000
MAX_SECONDS = 2.0
MAX_ITEMS = 10_000  # elements of a list, entries of a map, that an expression builds
MAX_TEXT = 100_000  # characters of a text (bytes of a bytes value) that an expression builds
MAX_MACRO_NESTING = 3
# Joining text costs a step per this many characters of the result.
_CHARACTERS_PER_STEP = 100


class ExpressionError(Exception):
    """A guard or assign expression that does not compile or cannot be evaluated."""

    def __init__(
        self, message: str, *, column: int | None = None, over_budget: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.column = column
        # True when the expression ran out of its evaluation budget (or would, as far as can
        # be known before it runs), rather than being wrong about its data.
        self.over_budget = over_budget

    def __str__(self) -> str:
        return self.message


class _OperandError(TypeError):
    """Raised by our operator overrides; its message is already fit for a person.

    It subclasses TypeError because that is what celpy's evaluator catches and wraps into a
    CELEvalError, keeping the class so that we can recognise our own message afterwards.
    """


# ---------------------------------------------------------------------------------------
# The budget


class Budget:
    """What a group of evaluations may spend together.

    A service call draws every guard and assign it evaluates from one budget (the engine's
    `Run` holds it), so the row lock it holds is held for at most MAX_SECONDS of evaluation
    however many expressions it tries. Not shared between threads.
    """

    __slots__ = ("seconds", "seconds_left", "steps", "steps_left")

    def __init__(self, *, steps: int = MAX_STEPS, seconds: float = MAX_SECONDS) -> None:
        self.steps = self.steps_left = steps
        self.seconds = self.seconds_left = seconds

    def __repr__(self) -> str:
        return f"Budget(steps_left={self.steps_left}, seconds_left={self.seconds_left:.3f})"


class _Spending:
    """The budget of the evaluation running in this context, with its deadline."""

    __slots__ = ("budget", "deadline")

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.deadline = time.monotonic() + budget.seconds_left

    def spend(self, steps: int) -> None:
        budget = self.budget
        budget.steps_left -= steps
        if budget.steps_left < 0:
            raise ExpressionError(
                f"evaluation budget exceeded: more than {budget.steps:,} steps", over_budget=True
            )
        if time.monotonic() >= self.deadline:
            raise ExpressionError(
                f"evaluation budget exceeded: more than {budget.seconds:g} s of evaluation",
                over_budget=True,
            )

    def close(self) -> None:
        self.budget.seconds_left = max(0.0, self.deadline - time.monotonic())


_SPENDING: contextvars.ContextVar[_Spending | None] = contextvars.ContextVar(
    "expression_budget", default=None
)


def _spend(steps: int) -> None:
    spending = _SPENDING.get()
    if spending is not None:
        spending.spend(steps)


def _check_size(value: Any) -> None:
    """A value the expression built must stay within the size limits."""
    if isinstance(value, str | bytes):
        if len(value) > MAX_TEXT:
            raise ExpressionError(
                f"evaluation budget exceeded: text of more than {MAX_TEXT:,} characters",
                over_budget=True,
            )
    elif isinstance(value, list) and len(value) > MAX_ITEMS:
        raise ExpressionError(
            f"evaluation budget exceeded: a list of more than {MAX_ITEMS:,} elements",
            over_budget=True,
        )
    elif isinstance(value, dict) and len(value) > MAX_ITEMS:
        raise ExpressionError(
            f"evaluation budget exceeded: a map of more than {MAX_ITEMS:,} entries",
            over_budget=True,
        )


def _spend_on_size(value: Any) -> None:
    """Copying or walking a value costs by its size."""
    if isinstance(value, str | bytes):
        _spend(len(value) // _CHARACTERS_PER_STEP)
    elif isinstance(value, list | dict):
        _spend(len(value))


# The parse-tree nodes whose value the expression builds (rather than reads from the data):
# literal lists and maps, macros and methods, function calls.
_BUILDING_NODES = frozenset({"list_lit", "map_lit", "member_dot_arg", "ident_arg"})


class _BudgetedEvaluator(Evaluator):
    """celpy's interpreter, charging the budget of this context at each step."""

    def _visit_tree(self, tree: lark.Tree) -> Any:
        # celpy's tree wraps every operand in a chain of one-child nodes (expr, conditionalor,
        # ... primary); a step is a node that does something: a primary (name, literal, call,
        # list or map) or a node that combines several children (an operator, a member access).
        if len(tree.children) != 1 or tree.data == "primary":
            _spend(1)
        value = super()._visit_tree(tree)
        if tree.data in _BUILDING_NODES:
            _check_size(value)
        return value

    def sub_evaluator(self, ast: lark.Tree) -> Evaluator:
        # Macro bodies (map, all...) are evaluated by sub-evaluators: they spend too.
        return _BudgetedEvaluator(ast, activation=self.activation)


class _BudgetedRunner(celpy.InterpretedRunner):
    def evaluate(self, context: Any) -> Any:
        return _BudgetedEvaluator(ast=self.ast, activation=self.new_activation()).evaluate(context)


# ---------------------------------------------------------------------------------------
# Values: kinds, conversion in and out


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool | celtypes.BoolType):
        return "bool"
    if isinstance(value, celtypes.UintType):
        return "uint"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, datetime.datetime):
        return "timestamp"
    if isinstance(value, datetime.timedelta):
        return "duration"
    if isinstance(value, CELEvalError):
        return "error"
    return "function or type"


def _is_number(value: Any) -> bool:
    return _kind(value) in ("int", "uint", "double")


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool | celtypes.BoolType)


def _to_cel(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise ExpressionError(f"number {value} is too large for an expression")
        return celtypes.IntType(value)
    if isinstance(value, float | Decimal):
        return celtypes.DoubleType(float(value))
    if isinstance(value, str):
        return celtypes.StringType(value)
    if isinstance(value, list | tuple):
        return celtypes.ListType([_to_cel(item) for item in value])
    if isinstance(value, Mapping):
        return celtypes.MapType({_to_cel(k): _to_cel(v) for k, v in value.items()})
    if isinstance(value, datetime.datetime):
        return celtypes.TimestampType(value)
    if isinstance(value, datetime.timedelta):
        return celtypes.DurationType(value)
    raise ExpressionError(f"a {type(value).__name__} value cannot be used in an expression")


def _to_python(value: Any) -> Any:
    if isinstance(value, CELEvalError):
        raise ExpressionError(_describe(value))
    kind = _kind(value)
    if kind == "null":
        return None
    if kind == "bool":
        return bool(value)
    if kind in ("int", "uint"):
        return int(value)
    if kind == "double":
        number = float(value)
        if not math.isfinite(number):
            raise ExpressionError("the result is not a finite number")
        if number.is_integer() and abs(number) < _SAFE_INT:
            return int(number)
        return number
    if kind == "string":
        return str(value)
    if kind == "list":
        # Stored as JSON, a list that holds one list many times is that many copies.
        _spend(len(value))
        return [_to_python(item) for item in value]
    if kind == "map":
        _spend(len(value))
        return {_to_python(k): _to_python(v) for k, v in value.items()}
    if kind == "timestamp":
        return str(celtypes.TimestampType(value))
    if kind == "duration":
        return format_duration(value)
    if kind == "bytes":
        raise ExpressionError("the result is bytes, which cannot be stored")
    raise ExpressionError("the result is a function or type, not a value")


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------------------------
# Operators: the standard ones, made to mix ints and doubles and to fail with clear words


def _plain_number(value: Any) -> int | float:
    return float(value) if isinstance(value, float) else int(value)


def _mixed(a: Any, b: Any) -> bool:
    return _is_number(a) and _is_number(b) and _kind(a) != _kind(b)


def _first_error(*values: Any) -> CELEvalError | None:
    # celpy evaluates both operands before calling an operator; an error in either one is
    # passed in as a value and must come out unchanged so that its message survives.
    for value in values:
        if isinstance(value, CELEvalError):
            return value
    return None


def _arith(symbol: str, op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def apply(a: Any, b: Any) -> Any:
        if (error := _first_error(a, b)) is not None:
            return error
        if _is_number(a) and _is_number(b):
            if symbol in ("/", "%") and _plain_number(b) == 0:
                raise ZeroDivisionError(symbol)
            if _mixed(a, b) or _kind(a) == "double":
                if symbol == "%":
                    raise _OperandError("'%' needs whole numbers")
                result = op(float(a), float(b))
                if not math.isfinite(result):
                    raise OverflowError("number out of range")
                return celtypes.DoubleType(result)
            return op(a, b)
        if symbol == "+" and _kind(a) == _kind(b) and _kind(a) in ("string", "list", "bytes"):
            joined = op(a, b)
            _check_size(joined)
            _spend_on_size(joined)
            return joined
        if symbol in ("+", "-") and {_kind(a), _kind(b)} <= {"timestamp", "duration"}:
            return op(a, b)
        raise _OperandError(f"cannot apply '{symbol}' to {_kind(a)} and {_kind(b)}")

    return apply


def _equal(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if _is_number(a) and _is_number(b):
        return _plain_number(a) == _plain_number(b)
    if ka != kb:
        return False
    if ka == "list":
        if len(a) != len(b):
            return False
        _spend(len(a))
        return all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if ka == "map":
        if len(a) != len(b):
            return False
        _spend(len(a))
        for key, value in a.items():
            match = [other for other in b if _equal(key, other)]
            if not match or not _equal(value, b[match[0]]):
                return False
        return True
    if ka == "null":
        return True
    if ka in ("function or type", "error"):
        return a is b
    return bool(a == b)


def _compare(symbol: str, op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], Any]:
    def apply(a: Any, b: Any) -> Any:
        if (error := _first_error(a, b)) is not None:
            return error
        if _is_number(a) and _is_number(b):
            return celtypes.BoolType(op(_plain_number(a), _plain_number(b)))
        ka, kb = _kind(a), _kind(b)
        if ka == kb and ka in ("string", "bool", "bytes", "timestamp", "duration"):
            return celtypes.BoolType(op(a, b))
        raise _OperandError(f"cannot compare {ka} and {kb} with '{symbol}'")

    return apply


def _eq(a: Any, b: Any) -> Any:
    if (error := _first_error(a, b)) is not None:
        return error
    return celtypes.BoolType(_equal(a, b))


def _ne(a: Any, b: Any) -> Any:
    if (error := _first_error(a, b)) is not None:
        return error
    return celtypes.BoolType(not _equal(a, b))


def _in(item: Any, container: Any) -> Any:
    if (error := _first_error(item, container)) is not None:
        return error
    kind = _kind(container)
    if kind in ("list", "map"):
        _spend(len(container))
    if kind == "list":
        return celtypes.BoolType(any(_equal(item, element) for element in container))
    if kind == "map":
        return celtypes.BoolType(any(_equal(item, key) for key in container))
    hint = " (use contains() for text)" if kind == "string" else ""
    raise _OperandError(f"'in' needs a list or map on its right, not {kind}{hint}")


def _and(a: Any, b: Any) -> Any:
    # CEL's && is commutative over errors: false on either side wins, then errors.
    if any(_is_bool(v) and not v for v in (a, b)):
        return celtypes.BoolType(False)
    for value in (a, b):
        if isinstance(value, CELEvalError):
            return value
    for value in (a, b):
        if not _is_bool(value):
            raise _OperandError(f"'&&' needs true/false on both sides, not {_kind(value)}")
    return celtypes.BoolType(True)


def _or(a: Any, b: Any) -> Any:
    if any(_is_bool(v) and v for v in (a, b)):
        return celtypes.BoolType(True)
    for value in (a, b):
        if isinstance(value, CELEvalError):
            return value
    for value in (a, b):
        if not _is_bool(value):
            raise _OperandError(f"'||' needs true/false on both sides, not {_kind(value)}")
    return celtypes.BoolType(False)


def _not(a: Any) -> Any:
    if isinstance(a, CELEvalError):
        return a
    if not _is_bool(a):
        raise _OperandError(f"'!' needs true/false, not {_kind(a)}")
    return celtypes.BoolType(not a)


def _neg(a: Any) -> Any:
    if isinstance(a, CELEvalError):
        return a
    if _kind(a) in ("int", "double", "duration"):
        return -a
    raise _OperandError(f"'-' needs a number, not {_kind(a)}")


def _condition(cond: Any, when_true: Any, when_false: Any) -> Any:
    if isinstance(cond, CELEvalError):
        return cond
    if not _is_bool(cond):
        raise _OperandError(f"the condition before '?' must be true/false, not {_kind(cond)}")
    return when_true if cond else when_false


# re2 (linear time, so a requester's text cannot make a guard hang) but without its C++
# logging of bad patterns to stderr; the error reaches the admin as a message instead.
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


@functools.lru_cache(maxsize=256)
def _regex(pattern: str) -> Any:
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as error:
        detail = error.args[0] if error.args else ""
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise _OperandError(f"invalid regular expression {pattern!r}: {detail}") from None


def _matches(text: Any, pattern: Any) -> Any:
    if (error := _first_error(text, pattern)) is not None:
        return error
    if _kind(text) != "string" or _kind(pattern) != "string":
        raise _OperandError(f"matches() needs text, not {_kind(text)} and {_kind(pattern)}")
    return celtypes.BoolType(_regex(str(pattern)).search(str(text)) is not None)


def _string(value: Any) -> Any:
    # CEL defines string() for scalars; celpy's writes out a whole list or map in one step,
    # which the budget could not stop.
    if (error := _first_error(value)) is not None:
        return error
    if _kind(value) in ("list", "map"):
        raise _OperandError(f"string() does not accept a {_kind(value)}")
    return celtypes.StringType(value)


_OPERATORS: dict[str, Callable[..., Any]] = {
    "matches": _matches,
    "string": _string,
    "_+_": _arith("+", lambda a, b: a + b),
    "_-_": _arith("-", lambda a, b: a - b),
    "_*_": _arith("*", lambda a, b: a * b),
    "_/_": _arith("/", lambda a, b: a / b),
    "_%_": _arith("%", lambda a, b: a % b),
    "_<_": _compare("<", lambda a, b: a < b),
    "_<=_": _compare("<=", lambda a, b: a <= b),
    "_>_": _compare(">", lambda a, b: a > b),
    "_>=_": _compare(">=", lambda a, b: a >= b),
    "_==_": _eq,
    "_!=_": _ne,
    "_in_": _in,
    "_&&_": _and,
    "_||_": _or,
    "!_": _not,
    "-_": _neg,
    "_?_:_": _condition,
}


# ---------------------------------------------------------------------------------------
# Error messages


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CEL_REPR = re.compile(r"\b(?:String|Int|Uint|Double|Bool|Bytes)Type\((.*?)\)")


def _describe(error: CELEvalError) -> str:
    args = error.args
    message = str(args[0]) if args else "evaluation failed"
    cause = args[1] if len(args) > 1 else None
    detail = args[2] if len(args) > 2 else None
    if cause is _OperandError and detail:
        return str(detail[0])[:200]
    if message.startswith("undeclared reference to"):
        name = detail[0] if detail else message.split("'")[1]
        if error.token is not None:
            return f"unknown function '{name}'"
        return f"unknown name '{name}'"
    if cause is KeyError and detail == (message,) and _IDENTIFIER.fullmatch(message):
        # celpy's error for an unknown root-scope name (.amount) is the bare name.
        return f"unknown name '{message}'"
    if message.startswith("no such member in mapping"):
        field = message.split(":", 1)[1].strip()
        return f"no field {field} (has() tests whether a field is there)"
    if message.startswith("No ") and "in bindings" in message:
        return f"unknown name {message.split()[1]}"
    if message == "no such key":
        return f"no key {_show(_to_python_or_text(detail[0]) if detail else '?')} in the map"
    if message.endswith("does not support field selection"):
        field = _selected_field(error)
        kind = message.split("celtypes.")[-1].split("Type")[0].lower() or "value"
        return f"cannot read field '{field}' of a {kind}"
    if message == "modulus or divide by zero":
        return "modulo by zero" if detail and detail[0] == "%" else "division by zero"
    if message == "invalid_argument" and cause is IndexError:
        return "list index out of range"
    if error.token is not None:
        # Errors raised inside a function or method, e.g. int('x') or size(1).
        name = error.token.value
        if message == "no such overload":
            return f"{name}() does not accept these arguments"
        text = _CEL_REPR.sub(r"\1", str(detail[0]) if detail else message)
        return f"{name}(): {text}"[:200]
    if message == "return error for overflow" or cause is OverflowError:
        return "number out of range"
    if message.startswith("found no matching overload"):
        return "these values cannot be combined this way"
    if message == "match error":
        return f"invalid regular expression: {detail[0] if detail else ''}".strip()
    return message[:200]


def _to_python_or_text(value: Any) -> Any:
    try:
        return _to_python(value)
    except ExpressionError:
        return str(value)


def _selected_field(error: CELEvalError) -> str:
    tree = error.tree
    if tree is not None and len(tree.children) == 2:
        token = tree.children[1]
        if isinstance(token, lark.Token):
            return str(token.value)
    return "?"


def _syntax_message(error: CELParseError) -> str:
    lark_error = error.__context__
    if isinstance(lark_error, lark.exceptions.UnexpectedToken):
        if lark_error.token.type == "$END":
            problem = "unexpected end of expression"
        else:
            problem = f"unexpected {lark_error.token.value!r}"
    elif isinstance(lark_error, lark.exceptions.UnexpectedCharacters):
        char = lark_error.char
        quote = char in "'\""
        problem = "unterminated string" if quote else f"unexpected character {char!r}"
    elif isinstance(lark_error, lark.exceptions.UnexpectedEOF):
        problem = "unexpected end of expression"
    else:
        problem = "invalid expression"
    if error.line is None:
        return f"syntax error: {problem}"
    if error.line > 1:
        return f"syntax error at line {error.line}, column {error.column}: {problem}"
    return f"syntax error at column {error.column}: {problem}"


# ---------------------------------------------------------------------------------------
# Compilation


class _Analysis:
    """What compile time learns from the tree: names, literals, depth."""

    def __init__(self, tree: lark.Tree) -> None:
        self.identifiers: set[str] = set()
        self.bound: set[str] = set()
        self.literals: list[lark.Tree] = []
        # Iterative on purpose: the recursion limit is what we are protecting.
        depth_of: dict[int, int] = {id(tree): 1}
        self.depth = 1
        stack = [tree]
        while stack:
            node = stack.pop()
            depth = depth_of[id(node)]
            self.depth = max(self.depth, depth)
            if node.data in ("ident", "dot_ident"):
                # A leading dot (.amount) names the same root-scope field.
                self.identifiers.add(str(node.children[0]))
            elif node.data == "literal":
                self.literals.append(node)
            elif node.data == "member_dot_arg":
                self._note_macro_variable(node)
            for child in node.children:
                if isinstance(child, lark.Tree):
                    depth_of[id(child)] = depth + 1
                    stack.append(child)

    def _note_macro_variable(self, node: lark.Tree) -> None:
        # list.exists(x, x > 1): x is bound by the macro, it is not a context name.
        if len(node.children) < 3 or str(node.children[1]) not in _MACROS:
            return
        exprlist = node.children[2]
        if not isinstance(exprlist, lark.Tree) or not exprlist.children:
            return
        first = exprlist.children[0]
        if isinstance(first, lark.Tree):
            idents = [t for t in first.iter_subtrees() if t.data == "ident"]
            if len(idents) == 1:
                self.bound.add(str(idents[0].children[0]))


# celpy's parser is a process-wide singleton; parsing is guarded because lark's parser
# state is not documented as thread-safe and the cost is paid once per distinct source.
_ENVIRONMENT = celpy.Environment()
_COMPILE_LOCK = threading.Lock()
_FUNCTIONS: dict[str, Callable[..., Any]] = {**_OPERATORS}


class Expression:
    """A compiled expression. Immutable and safe to share between threads."""

    __slots__ = ("_analysis", "_runner", "_tree", "source")

    def __init__(self, source: str, tree: lark.Tree, analysis: _Analysis) -> None:
        self.source = source
        self._tree = tree
        self._analysis = analysis
        self._runner = _BudgetedRunner(_ENVIRONMENT, tree, _FUNCTIONS)

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"

    def names(self) -> set[str]:
        """Top-level context names the expression reads (without ``event``)."""
        return self._analysis.identifiers - self._analysis.bound - {"event"}

    def evaluate(
        self,
        context: Mapping[str, Any],
        event: Mapping[str, Any] | None = None,
        *,
        budget: Budget | None = None,
    ) -> Any:
        """Evaluate against ``context`` (bare names) and ``event`` (``event.x``).

        Returns plain JSON-like Python values. Raises ExpressionError for every problem
        that the expression or the data can cause, ``over_budget`` set when it is the
        budget's: ``budget`` when given (shared with other evaluations), a fresh one otherwise.
        """
        # Only referenced names are converted: contexts grow with step outputs, and an
        # odd value in a field the guard never reads must not break it.
        activation: dict[str, Any] = {}
        for name in self._analysis.identifiers:
            if name in context and name != "event":
                activation[name] = _to_cel(context[name])
        activation["event"] = _to_cel(dict(event) if event is not None else {})
        spending = _Spending(budget if budget is not None else Budget())
        token = _SPENDING.set(spending)
        try:
            return _to_python(self._runner.evaluate(activation))
        except CELEvalError as error:
            raise ExpressionError(_describe(error), column=error.column) from None
        except RecursionError:
            raise ExpressionError("expression is nested too deeply") from None
        except ExpressionError:
            raise
        except Exception as error:
            # This is the sandbox boundary: whatever celpy lets escape (a conversion in a
            # function, an overflow in a timestamp) is the expression's fault, not a crash.
            raise ExpressionError(_unexpected(error)) from None
        finally:
            _SPENDING.reset(token)
            spending.close()


def _unexpected(error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    if len(text) > 120 or "celpy" in text or "<class" in text:
        text = ""
    if isinstance(error, OverflowError):
        return "number out of range"
    return f"could not evaluate ({text})" if text else "could not evaluate"


@functools.lru_cache(maxsize=2048)
def _compile(source: str) -> Expression:
    if not source.strip():
        raise ExpressionError("empty expression")
    if len(source) > MAX_SOURCE_LENGTH:
        raise ExpressionError(f"expression is longer than {MAX_SOURCE_LENGTH} characters")
    try:
        with _COMPILE_LOCK:
            tree = _ENVIRONMENT.compile(source)
    except CELParseError as error:
        raise ExpressionError(_syntax_message(error), column=error.column) from None
    except RecursionError:
        raise ExpressionError("expression is nested too deeply") from None
    except Exception:
        # lark can raise other errors on unusual input; any of them means "not valid CEL".
        raise ExpressionError("syntax error: invalid expression") from None
    analysis = _Analysis(tree)
    if analysis.depth > MAX_TREE_DEPTH:
        raise ExpressionError("expression is nested too deeply")
    _check_literals(analysis.literals)
    return Expression(source, tree, analysis)


def _check_literals(literals: list[lark.Tree]) -> None:
    # celpy only converts literals when evaluating; a bad escape or an int64 overflow in
    # a literal is a mistake in the text, so report it when the admin saves.
    for node in literals:
        evaluator = Evaluator(node, activation=Activation())
        try:
            bad = isinstance(evaluator.literal(node), CELEvalError)
        except Exception:
            bad = True
        if bad:
            token = node.children[0]
            column = getattr(token, "column", None)
            where = f" at column {column}" if column else ""
            raise ExpressionError(f"invalid literal{where}: {str(token)[:40]}", column=column)


class _StaticCost:
    """A lower bound of the steps an expression takes, from its tree alone.

    Only literal lists and maps have a known length; a macro over one costs its body's steps
    once per element. Data (context, event) counts as empty, so what is refused here is over
    the budget whatever the data.
    """

    def __init__(self, tree: lark.Tree) -> None:
        self.steps, _ = self._cost(tree, nesting=0)

    def _cost(self, node: lark.Tree, *, nesting: int) -> tuple[int, int | None]:
        """(steps, length of the node's value when known). Recursive: the tree's depth is
        capped (MAX_TREE_DEPTH) before this runs."""
        children = node.children
        steps = 1 if len(children) != 1 or node.data == "primary" else 0
        macro = _macro_parts(node)
        if macro is not None:
            name, source, body = macro
            if nesting + 1 > MAX_MACRO_NESTING:
                raise ExpressionError(
                    f"macros nested more than {MAX_MACRO_NESTING} deep "
                    "(map, filter, all, exists, exists_one)",
                    over_budget=True,
                )
            source_steps, length = self._cost(source, nesting=nesting)
            body_steps, _ = self._cost(body, nesting=nesting + 1)
            return steps + source_steps + (length or 0) * body_steps, (
                length if name == "map" else None
            )
        lengths = []
        for child in children:
            if isinstance(child, lark.Tree):
                child_steps, length = self._cost(child, nesting=nesting)
                steps += child_steps
                lengths.append(length)
        if node.data == "list_lit":
            return steps, _exprlist_length(node)
        if node.data == "map_lit":
            return steps, (_exprlist_length(node) or 0) // 2
        if len(lengths) == 1 and len(children) == 1:
            return steps, lengths[0]
        if node.data == "addition" and len(lengths) == 2 and None not in lengths:
            # Joining two lists of known lengths (a difference of lists is an error anyway).
            return steps, sum(length for length in lengths if length is not None)
        return steps, None


def _macro_parts(node: lark.Tree) -> tuple[str, lark.Tree, lark.Tree] | None:
    """(name, the list it runs over, its body) for a macro call such as list.map(x, body)."""
    if node.data != "member_dot_arg" or len(node.children) != 3:
        return None
    source, name, args = node.children
    if str(name) not in _MACROS or not isinstance(args, lark.Tree) or len(args.children) != 2:
        return None
    body = args.children[1]
    if not isinstance(source, lark.Tree) or not isinstance(body, lark.Tree):
        return None
    return str(name), source, body


def _exprlist_length(node: lark.Tree) -> int:
    # list_lit / map_lit hold one exprlist / mapinits node (none when empty).
    if not node.children or not isinstance(node.children[0], lark.Tree):
        return 0
    return len(node.children[0].children)


def check_expression(source: str) -> Expression:
    """Compile an expression and refuse what is over the evaluation budget before it runs:
    macros nested more than MAX_MACRO_NESTING deep, and work over literal lists that takes
    more than MAX_STEPS steps. Validation uses this; the engine compiles with
    `compile_expression` alone, so that a definition published before a limit still loads
    (its expressions meet the budget when they run)."""
    expression = compile_expression(source)
    steps = _StaticCost(expression._tree).steps
    if steps > MAX_STEPS:
        raise ExpressionError(
            f"evaluating this takes more than {MAX_STEPS:,} steps (at least {steps:,}), "
            "over the evaluation budget",
            over_budget=True,
        )
    return expression


def compile_expression(source: str) -> Expression:
    """Compile a CEL expression (cached by source text).

    Raises ExpressionError with a short message for anything that is not a valid
    expression.
    """
    if not isinstance(source, str):
        raise ExpressionError(f"expected an expression string, not {type(source).__name__}")
    return _compile(source)


def evaluate_guard(
    expr: Expression,
    context: Mapping[str, Any],
    event: Mapping[str, Any] | None = None,
    *,
    budget: Budget | None = None,
) -> bool:
    """Evaluate ``expr`` as a guard: it must give true or false."""
    result = expr.evaluate(context, event, budget=budget)
    if not isinstance(result, bool):
        raise ExpressionError(f"guard '{expr.source}' gave {_show(result)}, not true/false")
    return result


# What a trial run can fail on because of the sample values it was given, not the guard.
_VALUE_DEPENDENT = ("division by zero", "modulo by zero", "list index", "no key", "number out")


def guard_problem(
    source: str, *, fields: Collection[str], samples: Mapping[str, Any] | None = None
) -> str | None:
    """What stops the engine reading ``source`` as a guard over a context of ``fields``, in
    words, or None: its syntax, the evaluation budget (check_expression), names that are no
    field (``event.x`` is the event's data, always allowed), and, when every name it reads
    has one of ``samples`` (a value of the field's kind) and it reads no event data, a trial
    run within a Budget: comparing text with a number, or a guard that gives no true/false."""
    try:
        expression = check_expression(source)
    except ExpressionError as exc:
        return str(exc)
    unknown = sorted(expression.names() - set(fields))
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, sorted(fields), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        known = ", ".join(sorted(fields)) or "none"
        return f"{name} is not a field of the request{hint}; the fields are: {known}"
    samples = samples or {}
    if "event" in expression._analysis.identifiers or not expression.names() <= set(samples):
        return None
    try:
        evaluate_guard(expression, samples, {}, budget=Budget())
    except ExpressionError as exc:
        if not exc.over_budget and not str(exc).startswith(_VALUE_DEPENDENT):
            return f"tried with a value of each field's kind, it fails: {exc}"
    return None
