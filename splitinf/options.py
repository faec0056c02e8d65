"""The command-line vocabulary shared by ``splitinf``, ``splitinf-edge`` and ``splitinf-device``.

One name per idea across every command: ``--bottleneck`` (a trained bottleneck checkpoint), ``--frames`` /
``--images`` (how many), ``--device-slowdown`` (play a slower board), ``--torch-device`` (cpu or cuda),
``--json`` (one JSON line last), ``--log-level`` (the servers' logging). An option renamed to fit keeps
working for one release under its old name, with a warning that names the new one.
"""

from __future__ import annotations

import argparse
import logging
import sys

LOG_LEVELS = ("debug", "info", "warning", "error")


def deprecated_alias(parser: argparse.ArgumentParser | argparse._ArgumentGroup, action: argparse.Action,
                     old: str) -> None:
    """Accept ``old`` as the option of ``action`` (a store or append option), warning that it is renamed."""
    new = action.option_strings[0]
    base = type(action)

    class Renamed(base):  # type: ignore[valid-type, misc]
        def __call__(self, parser, namespace, values, option_string=None):
            print(f"{parser.prog}: warning: {option_string} is deprecated and will be removed in the next "
                  f"release; use {new}", file=sys.stderr)
            super().__call__(parser, namespace, values, option_string)

    parser.add_argument(old, action=Renamed, dest=action.dest, type=action.type, choices=action.choices,
                        metavar=action.metavar, nargs=action.nargs, help=argparse.SUPPRESS,
                        default=argparse.SUPPRESS)


def add_log_level_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", default="info", choices=LOG_LEVELS,
                        help="how much the server logs to stderr (default %(default)s)")


def setup_logging(name: str, level: str) -> logging.Logger:
    """The program's logger, writing ``NAME: message`` lines to stderr at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
    return logger
