"""fixar_hw.tools.run_tool: process groups, timeouts, failures and the memory limit."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from fixar_hw.errors import FixarError, ToolError
from fixar_hw.tools import ToolResult, prepare_yowasp, run_tool, tool_failure

PY = sys.executable


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_captures_stdout_and_stderr(tmp_path):
    code = "import sys; print('out'); print('err', file=sys.stderr)"
    result = run_tool([PY, "-c", code], cwd=tmp_path, timeout=60, what="a script")
    assert isinstance(result, ToolResult)
    assert (result.returncode, result.stdout, result.stderr) == (0, "out\n", "err\n")
    assert result.log is None and result.seconds > 0


def test_appends_to_a_log_with_the_command(tmp_path):
    log = tmp_path / "tool.log"
    log.write_text("earlier\n")
    result = run_tool([PY, "-c", "print('hello')"], cwd=tmp_path, log=log, timeout=60,
                      what="a script")
    assert result.stdout == result.stderr == ""
    lines = log.read_text().splitlines()
    assert lines[0] == "earlier" and lines[1].startswith("$ ") and lines[2] == "hello"


def test_failure_raises_with_the_log_tail(tmp_path):
    log = tmp_path / "tool.log"
    code = "import sys; [print(f'line {i}') for i in range(100)]; sys.exit(3)"
    with pytest.raises(ToolError, match=r"^the tool failed \(exit status 3\); see .*tool\.log; "
                                        r"log tail:\n") as info:
        run_tool([PY, "-c", code], cwd=tmp_path, log=log, timeout=60, what="the tool")
    error = info.value
    assert isinstance(error, RuntimeError) and isinstance(error, FixarError)
    assert str(error).endswith("line 99") and "line 50" not in str(error)
    assert (error.returncode, error.timed_out, error.log, error.what) == (3, False, log,
                                                                          "the tool")


def test_failure_with_captured_output_and_check_false(tmp_path):
    code = "import sys; print('bye'); print('oops', file=sys.stderr); sys.exit(2)"
    result = run_tool([PY, "-c", code], cwd=None, timeout=60, what="x", check=False)
    assert result.returncode == 2
    error = tool_failure("the program", result)
    assert isinstance(error, ToolError)
    assert str(error).startswith("the program failed (exit status 2); log tail:\n$ ")
    assert "--- stdout ---\nbye\n--- stderr ---\noops" in str(error)


def test_timeout_kills_the_whole_process_group(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    start = time.monotonic()
    with pytest.raises(ToolError, match=r"^the script timed out after 2 s; log tail:\n") as info:
        run_tool([PY, "-c", code], cwd=tmp_path, timeout=2, what="the script")
    assert time.monotonic() - start < 30
    assert info.value.timed_out and info.value.returncode is None
    assert "started" in str(info.value)
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


def test_memory_limit_stops_a_greedy_tool(tmp_path):
    code = "b = bytearray(512 * 1024 * 1024); print('allocated')"
    with pytest.raises(ToolError, match=r"MemoryError") as info:
        run_tool([PY, "-c", code], cwd=tmp_path, timeout=60, what="a greedy script",
                 memory_limit=256 * 1024 * 1024)
    assert info.value.returncode == 1
    # the same script runs without the limit (and the limit does not leak into this process)
    result = run_tool([PY, "-c", "b = bytearray(64 * 1024 * 1024); print('ok')"], cwd=tmp_path,
                      timeout=60, what="a modest script", memory_limit=256 * 1024 * 1024)
    assert result.stdout == "ok\n"


def test_missing_tool_and_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError):
        run_tool([str(tmp_path / "no-such-tool")], cwd=tmp_path, timeout=60, what="nothing")
    with pytest.raises(ValueError, match=r"^argv must be a non-empty sequence"):
        run_tool("ls", cwd=tmp_path, timeout=60, what="ls")
    with pytest.raises(ValueError, match=r"^memory_limit must be a positive number of bytes"):
        run_tool(["true"], cwd=tmp_path, timeout=60, what="true", memory_limit=0)


def test_environment_is_passed(tmp_path):
    env = {**os.environ, "FIXAR_TOOLS_TEST": "42"}
    code = "import os; print(os.environ['FIXAR_TOOLS_TEST'])"
    assert run_tool([PY, "-c", code], cwd=tmp_path, timeout=60, what="env",
                    env=env).stdout == "42\n"


def test_interrupt_kills_the_tool(tmp_path, monkeypatch):
    pid_file = tmp_path / "child.pid"
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"

    def interrupted(self, input=None, timeout=None):
        while not pid_file.exists() or not pid_file.read_text():
            time.sleep(0.02)
        raise KeyboardInterrupt

    monkeypatch.setattr(subprocess.Popen, "communicate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_tool([PY, "-c", code], cwd=tmp_path, timeout=60, what="a sleeper")
    assert not _alive(int(pid_file.read_text()))


def _slow_tool(tmp_path, status: int = 0):
    """A tool that logs when it starts and ends, taking half a second."""
    log = tmp_path / "runs.log"
    tool = tmp_path / "slow-tool"
    tool.write_text(f"#!/bin/sh\necho start >> {log}\nsleep 0.5\necho end >> {log}\n"
                    f"exit {status}\n")
    tool.chmod(0o755)
    return tool, log


def test_prepare_yowasp_runs_once_per_process_and_one_process_at_a_time(tmp_path):
    """Two processes preparing the same tool at the same moment run it one after the other
    (never interleaved), and a process runs it once however often it asks."""
    tool, log = _slow_tool(tmp_path)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    code = ("import sys\nfrom fixar_hw.tools import prepare_yowasp\n"
            "for _ in range(3):\n    prepare_yowasp(sys.argv[1])\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tool)], env=env)
             for _ in range(2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    assert log.read_text().split() == ["start", "end", "start", "end"]
    assert (tmp_path / "cache" / "fixar-hw" / ".slow-tool.prepare.lock").exists()


def test_prepare_yowasp_reports_a_failing_tool(tmp_path):
    tool, _ = _slow_tool(tmp_path, status=3)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    with pytest.raises(ToolError, match=r"slow-tool \(first use: compiling its WebAssembly\) "
                                        r"failed \(exit status 3\)"):
        prepare_yowasp(str(tool), env)
