"""The ``spdnn`` command line.

Exit codes: 0 success, 2 user error (bad spec, bad arguments; a short message, no traceback),
1 internal error (a bug: the traceback is shown).
"""

from __future__ import annotations

import argparse
import json
import sys

from spdnn.errors import SpdnnError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spdnn", description="spdnn: a graph-based network design compiler")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("compile", help="compile specs to torch weights, resolved specs, pictures and a report",
                       description="Compile each spec and write DIR/<name>.pt (state dict), <name>.yaml "
                       "(resolved spec), <name>.dot and <name>.mmd (pictures), report.json and report.md.")
    c.add_argument("inputs", nargs="+", metavar="INPUT", help="YAML spec files")
    c.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    c.add_argument("--seed", type=int, default=0, help="seed of the initial weights (default 0)")

    i = sub.add_parser("inspect", help="print the per-layer table of a spec")
    i.add_argument("spec", metavar="SPEC")
    i.add_argument("--json", action="store_true", help="machine-readable output")

    s = sub.add_parser("schema", help="print the JSON Schema of the spec format")
    s.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    return p


def _version() -> str:
    from spdnn import __version__

    return f"spdnn {__version__}"


def _cmd_compile(args) -> int:
    from spdnn.compile import compile_specs, write_outputs

    models = compile_specs(args.inputs, seed=args.seed)
    written = write_outputs(models, args.output)
    for m in models:
        print(f"{m.graph.name}: {len(m.summary.layers)} layers, {m.summary.total_params:,} params, "
              f"{m.summary.total_flops:,} FLOPs")
    print(f"wrote {len(written)} files to {args.output}")
    return 0


def _cmd_inspect(args) -> int:
    from spdnn.frontends.yaml_importer import load_spec
    from spdnn.summary import summarize

    summary = summarize(load_spec(args.spec))
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        sys.stdout.write(summary.to_text())
    return 0


def _cmd_schema(args) -> int:
    from spdnn.frontends.yaml_importer.schema import spec_json_schema

    text = json.dumps(spec_json_schema(), indent=2) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``spdnn`` console script."""
    args = _parser().parse_args(argv)
    handler = {"compile": _cmd_compile, "inspect": _cmd_inspect, "schema": _cmd_schema}[args.command]
    try:
        return handler(args)
    except SpdnnError as e:
        print(f"spdnn {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"spdnn {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
