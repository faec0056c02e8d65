"""One CLI vocabulary: every option of every command explains itself and shows its default; reporting
commands take --json; renamed options still work for a release, with a warning naming the new name."""

from __future__ import annotations

import argparse
import importlib

import pytest

from splitinf.cli import COMMANDS, main

SERVERS = {"splitinf-edge": "splitinf.runtime.edge_cli", "splitinf-device": "splitinf.runtime.device_cli"}
# Commands that report nothing worth a JSON line: the servers print their JSON summary last (and write
# --summary-json), the relay prints its counters as a JSON line last.
NO_JSON = {"splitinf-edge", "splitinf-device", "splitinf netsim relay"}


def parsers() -> dict[str, argparse.ArgumentParser]:
    found = {}

    def walk(table: dict, prefix: str) -> None:
        for name, entry in table.items():
            if isinstance(entry, dict):
                walk(entry, f"{prefix} {name}")
                continue
            parser = argparse.ArgumentParser(prog=f"{prefix} {name}")
            importlib.import_module(entry[0]).add_arguments(parser)
            found[parser.prog] = parser

    walk(COMMANDS, "splitinf")
    for prog, module in SERVERS.items():
        parser = argparse.ArgumentParser(prog=prog)
        importlib.import_module(module).add_arguments(parser)
        found[prog] = parser
    return found


PARSERS = parsers()


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.help is not argparse.SUPPRESS
            and not isinstance(a, argparse._HelpAction)]


def shown(default) -> list[str]:
    """How a default may appear in its help: as written, or a float without its trailing .0."""
    forms = [str(default)]
    if isinstance(default, float):
        forms.append(f"{default:g}")
    return forms


@pytest.mark.parametrize("prog", sorted(PARSERS))
def test_every_option_has_help_and_shows_its_default(prog):
    parser = PARSERS[prog]
    formatter = parser._get_formatter()
    missing_help, missing_default = [], []
    for action in options(parser):
        if not action.help:
            missing_help.append(action.option_strings[0])
            continue
        trivial = action.default in (None, False, "", [], argparse.SUPPRESS) or isinstance(action, (
            argparse._StoreTrueAction, argparse._VersionAction))
        if not trivial and not any(form in formatter._expand_help(action) for form in shown(action.default)):
            missing_default.append(f"{action.option_strings[0]} (default {action.default!r})")
    assert not missing_help, f"{prog}: options without help: {missing_help}"
    assert not missing_default, f"{prog}: help does not show the default: {missing_default}"


@pytest.mark.parametrize("prog", sorted(set(PARSERS) - NO_JSON))
def test_every_reporting_command_takes_json(prog):
    assert "--json" in {s for a in PARSERS[prog]._actions for s in a.option_strings}


def test_one_name_per_idea():
    """The names this project settled on, and no visible option under a retired name."""
    retired = {"--checkpoint", "--slowdown", "--max-frames", "--limit", "--device"}
    for prog, parser in PARSERS.items():
        visible = {s for a in options(parser) for s in a.option_strings}
        allowed = {"--device"} if prog == "splitinf keys" else set()  # there: the name of a camera device
        assert not (visible & retired) - allowed, f"{prog} still shows {sorted((visible & retired) - allowed)}"


@pytest.mark.parametrize(("argv", "old", "new", "dest", "value"), [
    (["sweep", "--checkpoint", "a.pt", "--checkpoint", "b.pt"], "--checkpoint", "--bottleneck", "bottleneck",
     ["a.pt", "b.pt"]),
    (["demo", "--slowdown", "2"], "--slowdown", "--device-slowdown", "device_slowdown", "2"),  # X or 'board'
    (["eval", "--limit", "3"], "--limit", "--images", "images", 3),
])
def test_a_renamed_option_still_works_with_a_warning_naming_the_new_one(capsys, argv, old, new, dest, value):
    prog = f"splitinf {argv[0]}"
    args = PARSERS[prog].parse_args(argv[1:])
    assert getattr(args, dest) == value
    assert f"{old} is deprecated and will be removed in the next release; use {new}" in capsys.readouterr().err


def test_the_servers_renamed_options_still_work():
    edge = PARSERS["splitinf-edge"].parse_args(["--device", "cpu"])
    device = PARSERS["splitinf-device"].parse_args(["--source", "0", "--max-frames", "5", "--slowdown", "1.5"])
    assert edge.torch_device == "cpu" and (device.frames, device.device_slowdown) == (5, 1.5)


def test_the_top_level_help_lists_the_commands(capsys):
    assert main([]) == 2
    listing = capsys.readouterr().out
    assert all(name in listing for name in COMMANDS)
