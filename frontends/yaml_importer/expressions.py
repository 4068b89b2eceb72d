"""Variables in specs: ``$expr`` values and ``${expr}`` interpolation.

* A string value starting with ``$`` is an arithmetic expression over the spec's vars and the
  repeat indices: ``$width``, ``$width * 2``, ``$[k, k]``. Its result replaces the string.
* ``${expr}`` inside a longer string is replaced by the expression's value: ``conv${i}``.
* Expressions allow numbers, names, lists, + - * / // % **, unary minus, parentheses, list indexing
  (``$kernels[i - 1]``) and ``min``, ``max``, ``abs``, ``int``, ``round``. Nothing else is evaluated (no attribute
  access, no calls to anything else), so a spec cannot run code.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Mapping
from typing import Any

from spdnn.ops.base import suggest

__all__ = ["ExpressionError", "evaluate", "substitute"]

_BINOPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_FUNCS = {"min": min, "max": max, "abs": abs, "int": int, "round": round}
_INTERP = re.compile(r"\$\{([^}]*)\}")


class ExpressionError(ValueError):
    """An expression cannot be evaluated; the message says why."""


def evaluate(expr: str, env: Mapping[str, Any]) -> Any:
    """Evaluate one arithmetic expression over ``env``."""
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError:
        raise ExpressionError(f"invalid expression {expr!r}") from None
    return _eval(tree.body, env, expr)


def _eval(node: ast.AST, env: Mapping[str, Any], src: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in env:
            return env[node.id]
        if node.id in ("true", "false", "True", "False"):
            return node.id.lower() == "true"
        hint = suggest(node.id, list(env))
        more = f" (did you mean {hint[0]!r}?)" if hint else ""
        known = f"; known: {', '.join(sorted(env))}" if env else "; no vars are defined"
        raise ExpressionError(f"unknown variable {node.id!r}{more}{known}")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _eval(node.left, env, src), _eval(node.right, env, src)
        try:
            result = _BINOPS[type(node.op)](left, right)
        except (ZeroDivisionError, TypeError, OverflowError) as e:
            raise ExpressionError(f"cannot evaluate {src!r}: {e}") from None
        if isinstance(result, float) and result.is_integer() and isinstance(node.op, ast.Div):
            return int(result)  # $w / 2 with even w is a width, not a float
        return result
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _eval(node.operand, env, src)
        return -value if isinstance(node.op, ast.USub) else +value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(e, env, src) for e in node.elts]
    if isinstance(node, ast.Subscript):
        seq, index = _eval(node.value, env, src), _eval(node.slice, env, src)
        if not isinstance(seq, list) or not isinstance(index, int):
            raise ExpressionError(f"cannot index {seq!r} with {index!r} in {src!r}")
        if not -len(seq) <= index < len(seq):
            raise ExpressionError(f"index {index} is out of range for a list of {len(seq)} in {src!r}")
        return seq[index]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS
            and not node.keywords):
        return _FUNCS[node.func.id](*(_eval(a, env, src) for a in node.args))
    raise ExpressionError(f"unsupported expression {src!r} (only arithmetic over vars is allowed)")


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
            return _INTERP.sub(lambda m: str(evaluate(m.group(1), env)), value)
        return value
    if isinstance(value, list):
        return [substitute(v, env) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, env) for k, v in value.items()}
    return value
