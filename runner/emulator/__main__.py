"""``python -m runner.emulator --port 0 --port-file F ...``: the emulator as a process.

Independent of the click CLI on purpose, so a child process starts fast and works even when
other commands fail to import.
"""

from __future__ import annotations

import argparse
import sys

from runner.emulator.control import help_text
from runner.emulator.options import OPTIONS, build_config
from runner.emulator.runtime import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m runner.emulator",
        description="Local Blooio v2 API emulator",
        epilog=help_text().replace("\b\n", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=8765, help="0 = pick a free port")
    parser.add_argument("--port-file", help="write the port here once listening")
    parser.add_argument("--config-json", help="JSON object of EmulatorConfig fields")
    parser.add_argument("--quiet", action="store_true", help="print nothing")
    for opt in OPTIONS:
        if opt.kind == "flag":
            parser.add_argument(opt.flag, dest=opt.field, action="store_true", help=opt.help)
        elif opt.kind == "rules":
            parser.add_argument(opt.flag, dest=opt.field, action="append", help=opt.help)
        else:
            parser.add_argument(opt.flag, dest=opt.field, help=opt.help)
    args = parser.parse_args(argv)
    values = {opt.field: getattr(args, opt.field) for opt in OPTIONS}
    try:
        config = build_config(values, args.port, args.config_json)
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        serve(config, args.port_file, None if args.quiet else _announce)
    except OSError as exc:
        print(f"error: cannot listen on port {args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


def _announce(text: str) -> None:
    print(text, flush=True)


if __name__ == "__main__":
    sys.exit(main())
