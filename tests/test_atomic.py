"""Atomic writes: the old file or the new one, never half of one, never a temp left."""


def test_atomic_writes_leave_old_file_or_new_never_a_temp(tmp_path) -> None:
    from movierec.atomic import atomic_path, write_text

    p = write_text(tmp_path / "a.json", "old")
    try:
        with atomic_path(p) as tmp:
            assert tmp.parent == p.parent and tmp.suffix == ".json" and tmp.name.startswith(".")
            tmp.write_text("half")
            raise OSError("disk full")
    except OSError:
        pass
    assert p.read_text() == "old" and [x.name for x in tmp_path.iterdir()] == ["a.json"]
    write_text(p, "new")
    assert p.read_text() == "new" and [x.name for x in tmp_path.iterdir()] == ["a.json"]


def test_a_ctrl_c_dropped_in_native_code_still_stops_the_publish(tmp_path, monkeypatch) -> None:
    import ctypes
    import signal
    import threading

    import pytest

    from movierec import atomic

    monkeypatch.setattr(atomic, "_interrupt", threading.Event())
    # CPython prints and drops an exception raised in a ctypes callback (numba's
    # compiler runs some): the Ctrl-C never reaches the command's code
    callback = ctypes.CFUNCTYPE(None)(lambda: atomic.on_sigint(signal.SIGINT, None))
    callback()
    with pytest.raises(KeyboardInterrupt):
        atomic.write_text(tmp_path / "a.json", "new")
    assert list(tmp_path.iterdir()) == []
