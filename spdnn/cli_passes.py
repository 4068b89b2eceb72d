"""``spdnn passes [NAME]`` and the ``--pass`` / ``--plugin`` flags of ``spdnn compile``
(hooked into :mod:`spdnn.cli`).

Only argparse is imported here; the registries come with the command's work.
"""

from __future__ import annotations

import argparse
import inspect
import textwrap

__all__ = ["add_pass_arguments", "add_passes_parser", "apply_cli_passes", "cmd_passes", "load_cli_plugins"]


def add_pass_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--pass NAME[:key=value,...]`` and ``--plugin MODULE`` (both repeatable)."""
    g = parser.add_argument_group("passes and plugins (spdnn passes lists the passes)")
    g.add_argument("--pass", dest="passes", action="append", default=[], metavar="NAME[:key=value,...]",
                   help="run a pass on every compiled graph, after the spec's own passes: and before "
                   "merging; repeat for a pipeline (e.g. --pass insert-dropout:p=0.2,after=[conv2d,linear])")
    add_plugin_argument(parser, g)


def add_plugin_argument(parser: argparse.ArgumentParser, group=None) -> None:
    """Add ``--plugin MODULE`` (repeatable)."""
    (group or parser).add_argument(
        "--plugin", dest="plugins", action="append", default=[], metavar="MODULE",
        help="import MODULE first: a plugin registering ops and passes (installed plugins of the "
        "spdnn.plugins entry-point group load by themselves)")


def add_passes_parser(sub, common: argparse.ArgumentParser) -> None:
    """Add the ``passes`` subcommand to ``sub``."""
    p = sub.add_parser(
        "passes", parents=[common], formatter_class=argparse.RawDescriptionHelpFormatter,
        help="list the compiler passes, or describe one",
        description="List every pass with its rule (first docstring line); with NAME, print the "
        "pass's options (name, type, default, description) and its whole docstring. Passes run "
        "from a spec's passes: list, spdnn compile --pass, or spdnn.run_passes().",
        epilog="examples:\n  spdnn passes\n  spdnn passes insert-dropout\n"
               "  spdnn passes --plugin mypackage.spdnn_ops")
    p.add_argument("name", nargs="?", metavar="NAME", help="a pass name")
    add_plugin_argument(p)


def load_cli_plugins(args: argparse.Namespace) -> None:
    """Load installed plugins and those named by ``--plugin`` (PluginError names the culprit)."""
    from spdnn.plugins import load_plugin, load_plugins

    load_plugins()
    for module in getattr(args, "plugins", []):
        load_plugin(module)


def cmd_passes(args: argparse.Namespace, console=None) -> int:
    """``spdnn passes [NAME]``."""
    from spdnn.passes import PASSES, option_infos
    from spdnn.passes.registry import pass_class

    load_cli_plugins(args)
    if args.name is None:
        width = max(len(n) for n in PASSES)
        for name in sorted(PASSES):
            print(f"{name:<{width}}  {_first_line(PASSES[name])}")
        return 0
    cls = pass_class(args.name)
    print(f"{args.name}: {_first_line(cls)}")
    infos = option_infos(cls)
    if infos:
        print("\noptions:")
        rows = [(o.name, o.type, f"default {o.default}", o.description) for o in infos]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        for row in rows:
            print("  " + "  ".join(f"{c:<{w}}" for c, w in zip(row, widths)) + f"  {row[3]}")
    else:
        print("\noptions: none")
    print("\n" + inspect.cleandoc(cls.__doc__ or ""))
    return 0


def apply_cli_passes(graph, args: argparse.Namespace):
    """Run the ``--pass`` pipeline on ``graph`` in place; errors name the flag. Returns the graph."""
    from spdnn.errors import SpdnnError
    from spdnn.passes import PassOptionsError, get_pass, parse_pipeline_text

    for text in getattr(args, "passes", []):
        try:
            passes = [get_pass(name, options) for name, options in parse_pipeline_text(text)]
        except PassOptionsError as e:
            raise SpdnnError(f"--pass {text!r}: {e}") from None
        for p in passes:
            try:
                p.run(graph)
            except SpdnnError as e:
                raise SpdnnError(f"--pass {text!r} on {graph.name}: {e}") from None
    return graph


def _first_line(cls) -> str:
    doc = textwrap.dedent(cls.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else "(no description)"
