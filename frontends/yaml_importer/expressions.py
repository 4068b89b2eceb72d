"""Variables in specs: ``$expr`` values and ``${expr}`` interpolation.

* A string value starting with ``$`` is an arithmetic expression over the spec's vars and the
  repeat indices: ``$width``, ``$width * 2``, ``$[k, k]``. Its result replaces the string.
* ``${expr}`` inside a longer string is replaced by the expression's value: ``conv${i}``.
* Expressions allow numbers, strings, names, lists, ``+ - * / // % **``, unary ``-``/``+``,
  parentheses, list indexing (``$kernels[i - 1]``) and the functions ``min``, ``max``, ``abs``,
  ``int`` and ``round``. Nothing else is evaluated (no attribute access, no other calls), so a
  spec cannot run code.

The evaluator is total: every input ends in a value or an :class:`ExpressionError` saying what
was expected. Limits (``spdnn.limits``) are checked *before* computing: an expression's length
(``expr_chars``), depth (``expr_depth``) and size (``expr_nodes``); integers stay within
``int_digits`` digits (``**`` is estimated first); lists and strings, counted with everything
nested in them, within ``seq_items`` (``*`` and ``+`` are sized first). Floats must stay finite.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from spdnn.limits import current, limit_message
from spdnn.ops.base import suggest

__all__ = ["ExpressionError", "evaluate", "substitute", "describe"]

_INTERP = re.compile(r"\$\{([^}]*)\}")
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
        ast.Mod: "%", ast.Pow: "**"}
_ALLOWED = ("numbers, strings, vars, lists, + - * / // % **, indexing and "
            "min/max/abs/int/round")


class ExpressionError(ValueError):
    """An expression cannot be evaluated; the message says why and what was expected."""


def describe(value: Any) -> str:
    """A short description of a value for messages: ``the list [1, 2, ...] (300 items)``."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        text = repr(value) if not isinstance(value, int) or value.bit_length() < 200 else "a huge integer"
        return f"the number {text}"
    if value is None:
        return "null"
    kind = {str: "string", list: "list", dict: "mapping"}.get(type(value), type(value).__name__)
    text = repr(value) if isinstance(value, str) else kind
    if isinstance(value, (list, dict)):
        return f"a {kind} of {len(value)} item{'s' if len(value) != 1 else ''}"
    return f"the {kind} {text[:40]}{'...' if len(text) > 40 else ''}"


def evaluate(expr: str, env: Mapping[str, Any]) -> Any:
    """Evaluate one expression over ``env``; raise ExpressionError (never anything else)."""
    limits = current()
    if len(expr) > limits.expr_chars:
        raise ExpressionError(limit_message(f"expression is {len(expr):,} characters long", "expr_chars"))
    if "\n" in expr or "\r" in expr:
        raise ExpressionError("an expression must be on one line")
    src = expr.strip()
    try:
        tree = ast.parse(src, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        detail = getattr(e, "msg", None) or "not an expression"
        raise ExpressionError(f"invalid expression {src[:60]!r}: {detail}; expressions allow {_ALLOWED}") from None
    _check_size(tree.body, src)
    return _Evaluator(env, src).eval(tree.body)


def _check_size(root: ast.AST, src: str) -> None:
    """Depth and node count of the syntax tree, walked without recursion."""
    limits = current()
    todo, count = [(root, 1)], 0
    while todo:
        node, depth = todo.pop()
        count += 1
        if depth > limits.expr_depth:
            raise ExpressionError(limit_message(f"expression {src[:40]!r} nests deeper than "
                                                f"{limits.expr_depth} levels", "expr_depth"))
        if count > limits.expr_nodes:
            raise ExpressionError(limit_message(f"expression {src[:40]!r} has too many parts", "expr_nodes"))
        todo.extend((child, depth + 1) for child in ast.iter_child_nodes(node)
                    if not isinstance(child, (ast.expr_context, ast.operator, ast.unaryop)))


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class _Evaluator:
    """Evaluates a checked syntax tree; every result is checked against the limits."""

    def __init__(self, env: Mapping[str, Any], src: str):
        self.env, self.src = env, src
        self.limits = current()
        self.weights: dict[int, int] = {}

    def fail(self, message: str) -> ExpressionError:
        return ExpressionError(f"in {self.src[:60]!r}: {message}")

    # -- sizes -----------------------------------------------------------------------------
    def weight(self, v: Any) -> int:
        """Items of a value counting everything nested (characters for strings), memoised."""
        if isinstance(v, str):
            return max(len(v), 1)
        if not isinstance(v, (list, dict)):
            return 1
        key = id(v)
        if key not in self.weights:
            items = v.values() if isinstance(v, dict) else v
            self.weights[key] = 1 + sum(self.weight(x) for x in items)
        return self.weights[key]

    def check_weight(self, n: int, what: str) -> None:
        if n > self.limits.seq_items:
            raise self.fail(limit_message(f"{what} would have {n:,} items", "seq_items"))

    def checked(self, v: Any) -> Any:
        """Refuse integers with too many digits and non-finite floats."""
        if isinstance(v, bool):
            return v
        if isinstance(v, int):
            if v.bit_length() > self.limits.int_digits * 3.33 or len(str(abs(v))) > self.limits.int_digits:
                raise self.fail(limit_message(f"an integer result has more than {self.limits.int_digits} "
                                              "digits", "int_digits"))
        elif isinstance(v, float) and not math.isfinite(v):
            raise self.fail(f"the result is {v} (not a finite number)")
        elif isinstance(v, complex):
            raise self.fail("the result is a complex number; expected a real number")
        return v

    # -- nodes -----------------------------------------------------------------------------
    def eval(self, node: ast.AST) -> Any:
        method: Callable[[Any], Any] | None = getattr(self, f"eval_{type(node).__name__}", None)
        if method is None:
            raise self.fail(f"{type(node).__name__.lower()} is not supported; expressions allow {_ALLOWED}")
        return method(node)

    def eval_Constant(self, node: ast.Constant) -> Any:
        v = node.value
        if isinstance(v, str) or _is_num(v):
            return self.checked(v)
        raise self.fail(f"the constant {v!r} is not supported; expected a number or a string")

    def eval_Name(self, node: ast.Name) -> Any:
        if node.id in self.env:
            value = self.env[node.id]
            if isinstance(value, float) and not math.isfinite(value):
                raise self.fail(f"{node.id} is {value}; expected a finite number")
            return value
        if node.id in ("true", "false", "True", "False"):
            return node.id.lower() == "true"
        hint = suggest(node.id, list(self.env))
        more = f" (did you mean {hint[0]!r}?)" if hint else ""
        names = sorted(self.env)
        known = (f"; known: {', '.join(names[:20])}{', ...' if len(names) > 20 else ''}"
                 if names else "; no vars are defined")
        raise self.fail(f"unknown variable {node.id!r}{more}{known}")

    def eval_List(self, node: ast.List | ast.Tuple) -> list:
        items = [self.eval(e) for e in node.elts]
        self.check_weight(1 + sum(self.weight(x) for x in items), "the list")
        return items

    eval_Tuple = eval_List

    def eval_UnaryOp(self, node: ast.UnaryOp) -> Any:
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise self.fail(f"operator {type(node.op).__name__} is not supported; expected unary - or +")
        v = self.eval(node.operand)
        if not _is_num(v):
            sign = "-" if isinstance(node.op, ast.USub) else "+"
            raise self.fail(f"unary {sign} needs a number, got {describe(v)}")
        return -v if isinstance(node.op, ast.USub) else +v

    def eval_Subscript(self, node: ast.Subscript) -> Any:
        seq = self.eval(node.value)
        if isinstance(node.slice, ast.Slice):
            raise self.fail("slices are not supported; index one item: list[i]")
        index = self.eval(node.slice)
        if not isinstance(seq, list):
            raise self.fail(f"only lists can be indexed, got {describe(seq)}")
        if not isinstance(index, int) or isinstance(index, bool):
            raise self.fail(f"a list index must be an integer, got {describe(index)}")
        if not -len(seq) <= index < len(seq):
            raise self.fail(f"index {index} is out of range for a list of {len(seq)}")
        return seq[index]

    def eval_BinOp(self, node: ast.BinOp) -> Any:
        symbol = _OPS.get(type(node.op))
        if symbol is None:
            raise self.fail(f"operator {type(node.op).__name__} is not supported; expected + - * / // % **")
        a, b = self.eval(node.left), self.eval(node.right)
        if symbol == "+" and isinstance(a, (str, list)) and type(a) is type(b):
            self.check_weight(self.weight(a) + self.weight(b), f"the joined {type(a).__name__}")
            return a + b
        if symbol == "*" and (isinstance(a, (str, list)) or isinstance(b, (str, list))):
            return self.repeat(a, b)
        if not (_is_num(a) and _is_num(b)):
            raise self.fail(f"{symbol} needs two numbers, got {describe(a)} and {describe(b)}"
                            + (" (+ also joins two strings or two lists)" if symbol == "+" else ""))
        return self.arithmetic(symbol, a, b)

    def repeat(self, a: Any, b: Any) -> Any:
        seq, count = (a, b) if isinstance(a, (str, list)) else (b, a)
        if not isinstance(count, int) or isinstance(count, bool):
            raise self.fail(f"a {type(seq).__name__} can only be repeated an integer number of times, "
                            f"got {describe(count)}")
        if count <= 0:
            return type(seq)()
        self.check_weight(self.weight(seq) * count, f"the repeated {type(seq).__name__}")
        return seq * count

    def arithmetic(self, symbol: str, a: float, b: float) -> Any:
        if symbol == "**":
            self.check_power(a, b)
        try:
            result = {
                "+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
                "//": lambda: a // b, "%": lambda: a % b, "**": lambda: a ** b,
            }[symbol]()
        except ZeroDivisionError:
            raise self.fail(f"division by zero ({symbol} with {describe(b)})") from None
        except OverflowError:
            raise self.fail(f"{symbol} overflows (the result is too large)") from None
        if symbol == "/" and isinstance(result, float) and result.is_integer() and abs(result) < 1e15:
            return int(result)  # $w / 2 with even w is a width, not a float
        return self.checked(result)

    def check_power(self, base: float, exp: float) -> None:
        """Estimate the size of ``base ** exp`` before computing it."""
        if base == 0 and exp < 0:
            raise self.fail("0 cannot be raised to a negative power")
        if base < 0 and not float(exp).is_integer():
            raise self.fail("a negative number raised to a fraction is not a real number")
        if isinstance(base, int) and isinstance(exp, int) and abs(base) > 1 and exp > 0:
            digits = exp * math.log10(abs(base))
            if digits > self.limits.int_digits:
                raise self.fail(limit_message(f"{describe(base)} ** {describe(exp)} would have about "
                                              f"{digits:.3g} digits", "int_digits"))

    def eval_Call(self, node: ast.Call) -> Any:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        fn = getattr(self, f"fn_{name}", None) if name else None
        if fn is None:
            raise self.fail(f"only min, max, abs, int and round can be called, not "
                            f"{name or 'that'}")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail(f"{name}() takes plain positional arguments")
        return self.checked(fn([self.eval(a) for a in node.args]))

    def numbers(self, name: str, args: list[Any]) -> list[float]:
        values = args[0] if len(args) == 1 and isinstance(args[0], list) else args
        if len(args) == 1 and not isinstance(args[0], list):
            raise self.fail(f"{name}() takes a list or at least two numbers, got only {describe(args[0])}")
        if not values:
            raise self.fail(f"{name}() needs at least one number, got none")
        for v in values:
            if not _is_num(v):
                raise self.fail(f"{name}() compares numbers, got {describe(v)}")
        return values

    def fn_min(self, args: list[Any]) -> Any:
        return min(self.numbers("min", args))

    def fn_max(self, args: list[Any]) -> Any:
        return max(self.numbers("max", args))

    def one_number(self, name: str, args: list[Any]) -> float:
        if len(args) != 1 or not _is_num(args[0]):
            got = describe(args[0]) if len(args) == 1 else f"{len(args)} arguments"
            raise self.fail(f"{name}() takes one number, got {got}")
        return args[0]

    def fn_abs(self, args: list[Any]) -> Any:
        return abs(self.one_number("abs", args))

    def fn_int(self, args: list[Any]) -> int:
        if len(args) == 1 and isinstance(args[0], str):
            text = args[0].strip()
            if not _INT_TEXT.fullmatch(text) or len(text) > self.limits.int_digits + 1:
                raise self.fail(f"int() of a string needs decimal digits, got {describe(args[0])}")
            return int(text)
        return int(self.one_number("int", args))

    def fn_round(self, args: list[Any]) -> Any:
        if len(args) not in (1, 2) or not _is_num(args[0]):
            raise self.fail("round() takes a number and optionally a number of decimals: round(x) "
                            "or round(x, 2)")
        if len(args) == 1:
            return round(args[0])
        ndigits = args[1]
        if not isinstance(ndigits, int) or isinstance(ndigits, bool):
            raise self.fail(f"round()'s decimals must be an integer, got {describe(ndigits)}")
        bound = self.limits.int_digits
        if abs(ndigits) > bound:
            raise self.fail(limit_message(f"round() to {ndigits} decimals", "int_digits"))
        return self.checked(round(args[0], ndigits))


def substitute(value: Any, env: Mapping[str, Any]) -> Any:
    """Resolve ``$expr`` strings and ``${expr}`` interpolations inside ``value`` (recursively).

    ``$$`` at the start of a string escapes a literal ``$``.
    """
    if isinstance(value, str):
        if value.startswith("$$"):
            return value[1:]
        if value.startswith("$") and not value.startswith("${"):
            return evaluate(value[1:], env)
        if "${" in value:
            return _interpolate(value, env)
        return value
    if isinstance(value, list):
        return [substitute(v, env) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, env) for k, v in value.items()}
    return value


def _interpolate(text: str, env: Mapping[str, Any]) -> str:
    limit = current().seq_items
    parts: list[str] = []
    size = 0

    def one(m: re.Match) -> str:
        nonlocal size
        value = evaluate(m.group(1), env)
        if isinstance(value, (list, dict)) and _Evaluator(env, m.group(1)).weight(value) > 1000:
            raise ExpressionError(f"${{{m.group(1)[:40]}}} is {describe(value)}, too large to write "
                                  "into a string")
        piece = value if isinstance(value, str) else str(value)
        size += len(piece)
        if size > limit:
            raise ExpressionError(limit_message("the interpolated string is too long", "seq_items"))
        parts.append(piece)
        return piece

    return _INTERP.sub(one, text)
