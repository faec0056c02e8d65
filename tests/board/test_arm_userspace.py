"""What ``splitinf bench arm`` (``make test-arm``) installs into the aarch64 user-space: the board install's
requirements, read from the project's metadata, with none of the edge's packages."""

from splitinf.bench.arm import apt_options, board_requirements


def test_the_emulated_board_gets_the_base_requirements_and_no_edge_package():
    names = {r.split(">")[0].split("=")[0].split("<")[0].strip().lower() for r in board_requirements()}
    assert names == {"numpy", "pyzmq", "msgpack", "opencv-python-headless", "onnxruntime", "numba"}


def test_apt_runs_on_a_private_configuration(tmp_path):
    options = apt_options(tmp_path)
    private = [o for o in options if o.startswith(("-oDir::State", "-oDir::Cache", "-oDir::Etc="))]
    assert len(private) == 4 and all(str(tmp_path) in o for o in private)  # the machine's apt state untouched
