"""One error path for every command (issue 9): limit flags, interrupts, exit codes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT

from spdnn.cli import main

BASELINE = ROOT / "specs" / "dynamic_filters" / "mnist_baseline.yaml"  # 1,570 parameters


def test_max_params_flag_lowers_and_raises_the_limit(capsys):
    assert main(["inspect", str(BASELINE), "--max-params", "1000"]) == 2
    err = capsys.readouterr().err
    assert "mnist_baseline.yaml:" in err and "limit 1,000 (max_params, raise with --max-params)" in err
    assert main(["inspect", str(BASELINE), "--max-params", "1e4", "-q"]) == 0


def test_max_elements_flag(capsys):
    assert main(["inspect", str(BASELINE), "--max-elements", "100"]) == 2
    assert "(max_elements, raise with --max-elements)" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-3", "lots", "1e999"])
def test_bad_limit_values_exit_2(value, capsys):
    assert main(["inspect", str(BASELINE), "--max-params", value]) == 2
    assert "expected a positive count" in capsys.readouterr().err


def _wait_until_torch_is_loaded(pid: int, timeout: float = 120) -> None:
    """Until the process maps libtorch: spdnn's own code is running (interpreter start-up is over)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if "libtorch" in open(f"/proc/{pid}/maps").read():
                return
        except OSError:
            return
        time.sleep(0.02)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/maps")
@pytest.mark.parametrize("delay", [0.0, 0.5])
def test_sigint_at_any_moment_exits_130_without_traceback(tmp_path, delay):
    iris = sorted(str(p) for p in (ROOT / "specs" / "iris").glob("*.yaml"))
    proc = subprocess.Popen([sys.executable, "-m", "spdnn", "compile", *iris, "-o", str(tmp_path / "o")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_until_torch_is_loaded(proc.pid)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:  # finished before the signal: nothing to check
        return
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert not (tmp_path / "o").exists() or (tmp_path / "o" / "report.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".spdnn-")]


@pytest.mark.parametrize("value", ["inf", "nan", "-0.1", "zero"])
def test_train_learning_rate_must_be_a_finite_positive_number(value, capsys):
    assert main(["train", str(BASELINE), "--data", "d.npz", "--lr", value]) == 2
    assert "expected a positive number" in capsys.readouterr().err


def test_an_error_caused_by_ctrl_c_is_reported_as_an_interrupt(monkeypatch, capsys):
    """Ctrl-C while a C extension initialises surfaces as "ImportError: initialization failed";
    it is still an interrupt (exit 130), not an internal error."""
    import os

    import spdnn.cli as cli

    def interrupted_import(args):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except KeyboardInterrupt:
            raise ImportError("initialization failed") from None
        raise AssertionError("no SIGINT arrived")

    monkeypatch.setattr(cli, "_run", interrupted_import)
    assert cli.main(["schema"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "internal error" not in err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is restored
