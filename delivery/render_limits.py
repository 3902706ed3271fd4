"""The limits every template renders under, so that no template can hang or exhaust
``validate``, ``preview`` or a night's dispatch.

Jinja2's sandbox stops templates from reaching Python internals but not from working
forever: ``{{ 9**9**9 }}`` is folded at compile time, two nested ``range(100000)`` loops
run ten billion steps, a macro calling itself twice recurses exponentially, and
``{% set ns.s = ns.s ~ ns.s %}`` in a loop doubles a string until memory runs out. One
render (one template with what it extends, includes and calls) gets a ``RenderBudget``:

* ``MAX_STEPS`` loop iterations and calls together;
* ``MAX_OUTPUT`` characters written, counted everywhere (``{% set %}`` blocks and macros
  too), and no single string or list longer than that;
* ``MAX_DEPTH`` nested calls (macros, ``caller()``, recursive loops), and a Python
  ``RecursionError`` (templates including each other) caught;
* whole numbers up to ``MAX_INT_BITS`` bits, checked before ``**`` and ``*`` compute them,
  and text sizes checked before ``*``, ``+``, ``%``-formatting, padding and ``replace``.

Breaking a limit raises ``TemplateLimitError``; ``delivery.sandbox`` reports it like any
other template error (``limit``: which limit, and where in the template).
"""

from __future__ import annotations

import inspect
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.environment import Template
from jinja2.exceptions import TemplateRuntimeError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_STEPS = 100_000
MAX_OUTPUT = 1_000_000
MAX_DEPTH = 50
MAX_INT_BITS = 4096

_BIG_NUMBER = re.compile(r"\d{7,}")  # a width or precision of a million or more
_REFUSED_METHODS = frozenset({"expandtabs", "translate", "maketrans"})
_GROWING_FILTERS = frozenset({"join", "format", "replace", "indent", "wordwrap"})


class TemplateLimitError(TemplateRuntimeError):
    """A template broke one of the limits of its render."""


class RenderBudget:
    """What one render may still spend."""

    def __init__(self) -> None:
        self.steps = 0
        self.output = 0
        self.depth = 0

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise TemplateLimitError(
                f"the template ran more than {MAX_STEPS:,} loop iterations and calls"
            )

    def write(self, size: int) -> None:
        self.output += size
        if self.output > MAX_OUTPUT:
            raise TemplateLimitError(f"the template wrote more than {MAX_OUTPUT:,} characters")


_BUDGET: ContextVar[RenderBudget | None] = ContextVar("render_budget", default=None)


def _budget() -> RenderBudget:
    # Outside ``BoundedTemplate.render`` (``generate``, ``stream``) every operation still
    # gets its own limits, only not the render's running totals.
    return _BUDGET.get() or RenderBudget()


@contextmanager
def render_budget() -> Iterator[RenderBudget]:
    """A fresh budget for one render (nested renders share the outer one)."""
    if _BUDGET.get() is not None:
        yield _budget()
        return
    budget = RenderBudget()
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


# --- the checks ------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _sized(value: Any) -> bool:
    return isinstance(value, (str, list, tuple))


def check_size(value: Any, what: str = "a value") -> Any:
    """``value``, unless it is text or a list longer than ``MAX_OUTPUT``."""
    if _sized(value) and len(value) > MAX_OUTPUT:
        raise TemplateLimitError(f"{what} would be longer than {MAX_OUTPUT:,} characters")
    return value


def _check_number(value: Any) -> None:
    if _is_int(value) and value.bit_length() > MAX_INT_BITS:
        raise TemplateLimitError(f"a number larger than 2**{MAX_INT_BITS} is not allowed")


def _check_format(template: Any) -> None:
    if isinstance(template, str) and _BIG_NUMBER.search(template):
        raise TemplateLimitError("a format width or precision of a million or more")


def _result_bits(operator: str, left: Any, right: Any) -> int:
    """At least the bits of the whole number ``left operator right`` (0 if it is none)."""
    if not (_is_int(left) and _is_int(right)):
        return 0
    if operator == "**":
        return right * abs(left).bit_length() if right > 0 and abs(left) > 1 else 0
    return left.bit_length() + right.bit_length() if operator == "*" else 0


def _result_length(operator: str, left: Any, right: Any) -> int:
    """The length of the text or list ``left operator right`` (0 if it is none)."""
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            if _sized(seq) and _is_int(times):
                return int(len(seq) * max(times, 0))
    if operator == "+" and _sized(left) and _sized(right):
        return len(left) + len(right)
    return 0


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse ``left operator right`` before computing it when its result would break a
    limit."""
    if _result_bits(operator, left, right) > MAX_INT_BITS:
        raise TemplateLimitError(f"a number larger than 2**{MAX_INT_BITS} is not allowed")
    if _result_length(operator, left, right) > MAX_OUTPUT:
        raise TemplateLimitError(f"the result would be longer than {MAX_OUTPUT:,} characters")
    if operator == "%" and isinstance(left, str):
        _check_format(left)
        for arg in right if isinstance(right, tuple) else (right,):
            _check_number(arg)


def _string_method(obj: Any) -> tuple[str, str] | None:
    """The text and method name of a bound ``str`` method (or the sandbox's wrapper)."""
    method = getattr(obj, "__wrapped__", obj)
    owner = getattr(method, "__self__", None)
    if isinstance(owner, str):
        return owner, str(getattr(method, "__name__", ""))
    return None


def _check_replace(text: str, old: str, new: str) -> None:
    count = len(text) + 1 if old == "" else text.count(old)
    if len(text) + count * (len(new) - len(old)) > MAX_OUTPUT:
        raise TemplateLimitError(f"replaced text would be longer than {MAX_OUTPUT:,} characters")


def _bounded_items(items: Any, separator: str) -> list[Any]:
    """``items`` as a list, refused when joining them with ``separator`` would be too long."""
    listed = list(itertools.islice(items, MAX_STEPS + 1))
    if len(listed) > MAX_STEPS or len(separator) * len(listed) > MAX_OUTPUT:
        raise TemplateLimitError(f"joined text would be longer than {MAX_OUTPUT:,} characters")
    return listed


def _check_numbers(values: Iterable[Any]) -> None:
    for value in values:
        if _is_int(value) and abs(value) > MAX_OUTPUT:
            raise TemplateLimitError(f"the number {value} is too large for a template")


def check_call(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
    """Refuse a call whose arguments would make its result break a limit; return the
    arguments to call with (an iterable to join, counted into a list)."""
    _check_numbers((*args, *kwargs.values()))
    found = _string_method(obj)
    if found is None:
        return args
    text, name = found
    if name in _REFUSED_METHODS:
        raise TemplateLimitError(f"'{name}' is not allowed in templates")
    if name in ("format", "format_map"):
        _check_format(text)
    if name == "replace" and len(args) >= 2 and all(isinstance(a, str) for a in args[:2]):
        _check_replace(text, args[0], args[1])
    if name == "join" and len(args) == 1:
        return (_bounded_items(args[0], text),)
    return args


def _check_filter(name: str, arguments: dict[str, Any]) -> None:
    """The filters whose result can outgrow their input, estimated before they run."""
    text = arguments.get("s", arguments.get("value"))
    text = text if isinstance(text, str) else ""
    if name == "join":
        arguments["value"] = _bounded_items(arguments.get("value", ()), arguments.get("d", ""))
    elif name == "format":
        _check_format(text)
    elif name == "replace":
        old, new = arguments.get("old"), arguments.get("new")
        if isinstance(old, str) and isinstance(new, str):
            _check_replace(text, old, new)
    elif name in ("indent", "wordwrap"):
        pad: Any = arguments.get("width", 4) if name == "indent" else arguments.get("wrapstring")
        size = int(pad) if _is_int(pad) else len(str(pad or "\n"))
        lines = text.count("\n") + 1 + (len(text) if name == "wordwrap" else 0)
        if len(text) + lines * size > MAX_OUTPUT:
            raise TemplateLimitError(
                f"the {name} filter would write more than {MAX_OUTPUT:,} characters"
            )


def bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """The filter ``name`` under the limits: checked before it runs and after."""
    signature = inspect.signature(function)

    @wraps(function)  # keeps jinja_pass_arg (pass_context, pass_eval_context…)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _budget().step()
        _check_numbers((*args, *kwargs.values()))
        if name not in _GROWING_FILTERS:
            return check_size(function(*args, **kwargs), f"the {name} filter's result")
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            return function(*args, **kwargs)  # let the filter say what is wrong
        _check_filter(name, bound.arguments)
        result = function(*bound.args, **bound.kwargs)
        return check_size(result, f"the {name} filter's result")

    return bounded


# --- the environment and its code generator ----------------------------------------------


class BoundedCodeGenerator(CodeGenerator):
    """Compiles templates so that every loop iteration is a step and every piece of output
    (constant text too, in blocks, macros and ``{% set %}``) is counted."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        # ``environment.step`` as a statement: reading the property counts the iteration
        # (a call would go through the sandbox's slower ``call``).
        step = nodes.ExprStmt(nodes.EnvironmentAttribute("step"), lineno=node.lineno)
        node.body = [step, *node.body]
        super().visit_For(node, frame)

    def _output_const_repr(self, group: Any) -> str:
        return f"environment.counted({super()._output_const_repr(group)})"

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        self.write("environment.counted(")
        super()._output_child_pre(node, frame, finalize)

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        super()._output_child_post(node, frame, finalize)
        self.write(")")

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked_text(")
        super().visit_Concat(node, frame)
        self.write(")")


class BoundedTemplate(Template):
    """A template whose ``render`` gets a fresh ``RenderBudget``."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        with render_budget():
            return super().render(*args, **kwargs)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox under the limits of a ``RenderBudget``."""

    code_generator_class = BoundedCodeGenerator
    template_class = BoundedTemplate
    # Intercepted operators are computed at render time through ``call_binop`` (never
    # folded at compile time, where ``9**9**9`` would hang the compiler).
    intercepted_binops = frozenset({"**", "*", "+", "%"})

    @property
    def step(self) -> None:
        """Read at the top of every loop iteration: counts one step."""
        _budget().step()

    def counted(self, text: str) -> str:
        _budget().write(len(text))
        return text

    def checked_text(self, text: str) -> str:
        return str(check_size(text, "joined text"))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        budget.step()
        args = check_call(__obj, args, kwargs)
        budget.depth += 1
        try:
            if budget.depth > MAX_DEPTH:
                raise TemplateLimitError(f"calls are nested more than {MAX_DEPTH} deep")
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            budget.depth -= 1
        return check_size(result, "a call's result")
