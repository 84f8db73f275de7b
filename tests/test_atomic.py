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
