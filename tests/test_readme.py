"""The README's commands run as written.

Every command in the README's ``sh`` blocks is taken out (continuation lines joined, comments dropped). In
the default run each is parsed by the very parser of its program, and every file it names must exist (or
be a checkpoint name the package resolves); so a renamed option, a moved file or a wrong path fails here.
``make test-readme`` starts each for real and requires that it finishes cleanly or is still
working, error-free, when its time is up: a training run or the demo takes minutes to hours.
Commands that need a camera or a second machine are named below with the reason, and are not run.
"""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from splitinf.cli import COMMANDS
from splitinf.weights.checkpoints import CheckpointNotFound, find_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SERVERS = {"splitinf-edge": "splitinf.runtime.edge_cli", "splitinf-device": "splitinf.runtime.device_cli"}
# What a command needs that a test cannot give it, by a word it contains.
NOT_HERE = {
    "SERVER": "a second machine (the edge)",
    "--source 0": "a camera",
    "tcp://127.0.0.1:5600": "a relay and an edge running beside it (tests/runtime runs that chain)",
}
OUTPUTS = ("--out", "--output", "--summary-json", "--video-out", "--save-costs")
RUN_FOR_S = 150.0


def readme_commands() -> list[str]:
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = line.split("  #")[0].strip()
            if command:
                commands.append(" ".join(command.split()))
    return commands


COMMANDS_IN_README = readme_commands()
# Not this project's programs: make (the two commands, run by CI itself) and pip (installs, which
# tests/board/test_board_install.py performs for real in a fresh environment).
OURS = [c for c in COMMANDS_IN_README if not c.startswith(("make ", "pip "))]


def needs(command: str) -> str | None:
    return next((why for word, why in NOT_HERE.items() if word in command), None)


def parser_for(words: list[str]) -> tuple[argparse.ArgumentParser, list[str]]:
    """The program's own parser and the arguments it is given."""
    if words[0] in SERVERS:
        module, rest = SERVERS[words[0]], words[1:]
    elif words[0] == "splitinf":
        table, rest = COMMANDS, words[1:]
        while isinstance(table, dict):
            table, rest = table[rest[0]], rest[1:]
        module = table[0]
    elif words[0] == "python" and words[1].startswith("examples/"):
        module, rest = "splitinf.experiments.sweep", words[2:]  # the sweep example takes the sweep's options
        assert words[1] == "examples/latency_vs_bandwidth.py", f"no parser known for {words[1]}"
    else:
        raise AssertionError(f"the README shows a program this test does not know: {words[0]}")
    parser = argparse.ArgumentParser(prog=words[0], exit_on_error=False)
    importlib.import_module(module).add_arguments(parser)
    return parser, rest


def test_the_readme_shows_the_two_commands_and_the_programs():
    assert COMMANDS_IN_README[:2] == ["make demo", "make test"]
    programs = {c.split()[0] for c in COMMANDS_IN_README}
    assert {"splitinf", "splitinf-edge", "splitinf-device"} <= programs


@pytest.mark.parametrize("command", OURS)
def test_every_readme_command_parses_and_names_files_that_exist(command):
    parser, rest = parser_for(shlex.split(command))
    args = parser.parse_args(rest)  # exit_on_error=False: a bad option raises here, naming it
    words = shlex.split(command)
    for option, value in zip(words, words[1:]):
        if option in OUTPUTS or not option.startswith("--"):
            continue
        if value.endswith(".pt"):
            try:
                find_checkpoint(value)
            except CheckpointNotFound as error:
                pytest.fail(f"{command}: {error}")
        elif "/" in value and not value.startswith(("tcp://", "keys/")):  # keys/: made by `splitinf keys` first
            assert (ROOT / value).exists() or (ROOT.parent / "shared" / "data" / value).exists(), \
                f"{command}: {value} does not exist"
    assert args is not None


def run_for_a_while(command: str) -> tuple[int | None, str]:
    """Start the command from the repository root with the environment's programs; its exit code, or None
    if it is still running after RUN_FOR_S seconds (then stopped)."""
    words = shlex.split(command)
    if words[0] in ("splitinf", *SERVERS):
        words[0] = str(Path(sys.executable).parent / words[0])
    elif words[0] == "python":
        words[0] = sys.executable
    process = subprocess.Popen(words, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + RUN_FOR_S
    try:
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.5)
        code = process.poll()
    finally:
        if process.poll() is None:
            process.kill()
        _, stderr = process.communicate(timeout=60)
    return code, stderr


@pytest.mark.readme
@pytest.mark.parametrize("command", [c for c in COMMANDS_IN_README
                                     if c != "make test" and not c.startswith("pip ") and not needs(c)])
def test_every_readme_command_runs(command, tmp_path):
    code, stderr = run_for_a_while(command)
    assert code in (0, None), f"{command} exited with {code}: {stderr[-1500:]}"
    assert "Traceback" not in stderr and "error:" not in stderr, stderr[-1500:]
