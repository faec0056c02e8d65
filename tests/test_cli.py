import json
import subprocess
import sys
from pathlib import Path

from splitinf.cli import main


def script(name: str) -> str:
    """A console script of this environment (beside its python), whatever PATH says."""
    return str(Path(sys.executable).parent / name)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "splitinf", *args], capture_output=True, text=True, timeout=600)


def test_top_level_help_lists_commands_without_loading_torch():
    result = run_cli("--help")
    assert result.returncode == 0
    assert "models" in result.stdout and "bench" in result.stdout
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; from splitinf.cli import main;"
         "import contextlib, io\nwith contextlib.redirect_stdout(io.StringIO()):\n"
         "    try: main(['--help'])\n    except SystemExit: pass\nprint('torch' in sys.modules)"],
        capture_output=True, text=True, timeout=60,
    )
    assert probe.stdout.strip() == "False"


def test_unknown_model_is_one_clear_error_line():
    result = run_cli("models", "--model", "nope")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown model 'nope'; known models:" in lines[0]


def test_unknown_command_is_refused():
    result = run_cli("frobnicate")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_models_json_lists_params_and_macs(capsys):
    assert main(["models", "--model", "ssdlite_mobilenet_v2", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["models"]
    entry = listing[0]
    assert entry["name"] == "ssdlite_mobilenet_v2"
    assert entry["params"] == 4_500_543 and 0.7e9 < entry["macs"] < 0.8e9
    assert [s["key"] for s in entry["split_points"]] == ["s4", "s8", "s16"]


def test_models_sizes_compares_features_with_jpeg(capsys):
    assert main(["models", "--sizes", "--model", "ssdlite_mobilenet_v2", "--json"]) == 0
    out = capsys.readouterr().out
    entry = json.loads(out.strip().splitlines()[-1])["models"][0]
    s16 = entry["split_points"][2]
    assert s16["shape"] == [96, 19, 19] and s16["float32_bytes"] == 96 * 19 * 19 * 4
    assert 0 < entry["jpeg_q90_bytes"]["input"] < entry["jpeg_q90_bytes"]["original"]
    assert "JPEG90" in out


def test_bench_split_exact_json_last_line(capsys):
    assert main(["bench", "split-exact", "--model", "ssdlite_mobilenet_v2", "--images", "1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["pairs"] == 3 and summary["mismatched"] == 0 and summary["max_abs_diff"] == 0.0
    assert summary["detections_compared"] > 0


def run_together(*commands: list[str]) -> list[tuple[int, str, str]]:
    """(exit code, stdout, stderr) of each command, started at once (each spends seconds importing)."""
    running = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    outputs = [p.communicate(timeout=120) for p in running]
    return [(p.returncode, out, err) for p, (out, err) in zip(running, outputs)]


def test_runtime_entry_points_explain_themselves():
    results = run_together([script("splitinf-edge"), "--help"], [script("splitinf-device"), "--help"])
    for (code, out, _), words in zip(results, ("--max-batch", "--deadline-ms")):
        assert code == 0 and words in out and "--model" in out


def test_a_thread_count_below_one_is_refused_before_anything_loads():
    results = run_together([script("splitinf-edge"), "--threads", "0"],
                           [script("splitinf-device"), "--source", "x", "--threads", "0"])
    for code, _, err in results:
        assert code == 2
        assert "argument --threads: expected a whole number of threads >= 1, got '0'" in err


def test_device_refuses_a_missing_source_with_one_line():
    result = subprocess.run([script("splitinf-device"), "--connect", "tcp://127.0.0.1:9", "--source", "nope.mp4",
                             "--bottleneck", "none"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "source 'nope.mp4' cannot be opened" in result.stderr.strip().splitlines()[-1]
