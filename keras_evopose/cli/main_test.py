"""`keras-evopose` start-up: fast, quiet, one-line errors."""

import os
import pathlib
import subprocess
import sys
import time

import pytest

from keras_evopose.cli import UsageError
from keras_evopose.cli import check_input_size
from keras_evopose.cli import main
from keras_evopose.cli import native_log_filter

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run_command(*argv, code=None):
    """Runs the command line in a fresh interpreter, started the way the
    `keras-evopose` script starts it; returns the CompletedProcess."""
    code = code or (
        "import sys; sys.argv[0] = 'keras-evopose'\n"
        "from keras_evopose.cli import main\n"
        "status = main(sys.argv[1:])\n"
        "print('MODULES', 'tensorflow' in sys.modules, 'keras' in "
        "sys.modules)\n"
        "sys.exit(status)\n"
    )
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # what a user's shell has
    env.setdefault("KERAS_HOME", str(ROOT / ".keras_home"))
    return subprocess.run(
        [sys.executable, "-c", code, *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


# main() as the script runs it, reporting the imported frameworks even
# when argparse exits (--help, --version).
EXITING_CODE = (
    "import sys; sys.argv[0] = 'keras-evopose'\n"
    "from keras_evopose.cli import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "except SystemExit:\n"
    "    pass\n"
    "print('MODULES', 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
)


def test_help_and_version_import_neither_keras_nor_tensorflow():
    result = run_command("--help")
    assert result.returncode == 0, result.stderr
    assert "check-data" in result.stdout and "--log-level" in result.stdout
    result = run_command("--version", code=EXITING_CODE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("keras-evopose ")
    assert "MODULES False False" in result.stdout


@pytest.mark.parametrize(
    "command", ["train", "evaluate", "predict", "check-data", "export"]
)
def test_subcommand_help_imports_neither_keras_nor_tensorflow(command):
    result = run_command(command, "--help", code=EXITING_CODE)
    assert result.returncode == 0, result.stderr
    assert f"usage: keras-evopose {command}" in result.stdout
    assert "MODULES False False" in result.stdout


def test_info_imports_neither_keras_nor_tensorflow():
    # What keeps `keras-evopose info` under 2 s: it reads the preset table.
    result = run_command("info", "small")
    assert result.returncode == 0, result.stderr
    assert "params     2,531,199" in result.stdout
    assert "MODULES False False" in result.stdout


@pytest.mark.parametrize("launcher", ["script", "module"])
def test_info_prints_no_tensorflow_start_up_lines(launcher):
    # The installed `keras-evopose` script, or `python -m keras_evopose`.
    script = pathlib.Path(sys.executable).parent / "keras-evopose"
    if launcher == "script" and not script.exists():
        pytest.skip("the keras-evopose script is not installed here")
    command = (
        [str(script)]
        if launcher == "script"
        else [sys.executable, "-m", "keras_evopose"]
    )
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # what a user's shell has
    env.setdefault("KERAS_HOME", str(ROOT / ".keras_home"))
    result = subprocess.run(
        [*command, "info", "test"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "params     16,921" in result.stdout
    assert result.stderr == ""


def test_native_log_filter_keeps_other_lines(capfd):
    with native_log_filter():
        os.write(2, b"I0000 00:00:1795546291.206504   10407 port.cc:153] x\n")
        os.write(2, b"a real message\n")
    assert capfd.readouterr().err == "a real message\n"
    with pytest.raises(RuntimeError):
        with native_log_filter():
            os.write(2, b"E0000 00:00:17.5   1 cuda.cc:52] failed\n")
            raise RuntimeError("import failed")
    assert "cuda.cc:52" in capfd.readouterr().err  # replayed on failure
    with native_log_filter(keep=True):  # --log-level info
        os.write(2, b"W0000 00:00:17.5   1 cpu.cc:9] chatter\n")
    assert "cpu.cc:9] chatter" in capfd.readouterr().err


def test_check_input_size_names_the_nearest_valid_sizes():
    assert check_input_size((256, 192), 32) == (256, 192)
    with pytest.raises(UsageError) as error:
        check_input_size((250, 190), 32, name="--input-size")
    message = str(error.value)
    assert "--input-size 250x190" in message and "multiples of 32" in message
    assert "nearest valid sizes: 256x192" in message
    with pytest.raises(UsageError, match="nearest valid sizes: 16x16"):
        check_input_size((10, 10), 16)


def test_unknown_subcommand_and_bad_log_level_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--log-level", "loud", "info"])
    assert exit_info.value.code == 2
    assert "--log-level" in capsys.readouterr().err
    assert main([]) == 2


def test_a_bug_shows_its_traceback(monkeypatch):
    # Only usage and state-file errors become one line: anything else
    # (here a ValueError from deep inside) is a bug and is not swallowed.
    import pytest

    from keras_evopose.cli import info
    from keras_evopose.cli import main

    def broken(args):
        raise ValueError("a bug")

    monkeypatch.setattr(info, "run", broken)
    with pytest.raises(ValueError, match="a bug"):
        main(["info"])


def test_info_in_process_leaves_the_backend_alone(monkeypatch):
    import os

    from keras_evopose.cli import main

    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert main(["info", "test"]) == 0
    # A later subprocess (a docs block, a search) must not inherit numpy.
    assert "KERAS_BACKEND" not in os.environ


def test_lines_reach_a_file_as_they_are_printed(tmp_path):
    # stdout redirected to a file: each line is written when printed, not
    # when the process ends (a `nohup` run shows its progress).
    log = tmp_path / "log.txt"
    code = (
        "import sys, time; sys.argv[0] = 'keras-evopose'\n"
        "import keras_evopose.cli as cli\n"
        "cli.main(['info', 'test'])\n"
        "print('probe', flush=False)\n"
        "time.sleep(30)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PYTHONUNBUFFERED", None)  # what a user's shell has
    with open(log, "w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=handle
        )
    try:
        for _ in range(200):
            if "probe" in log.read_text():
                break
            if process.poll() is not None:
                break
            time.sleep(0.1)
        assert "probe" in log.read_text()
        assert process.poll() is None  # still running: written as printed
    finally:
        process.kill()
        process.wait()
