"""The one terminal table formatter (rich)."""

from movierec.tables import text_table


def test_header_rule_alignment_and_wide_characters() -> None:
    rows = [["a", "1.5", "千と千尋の神隠し"], ["long name", "10.25", "x"]]
    lines = text_table(rows, ["model", "rmse", "title"], right={1}).splitlines()
    assert lines[0].split() == ["model", "rmse", "title"]
    assert set(lines[1]) == {"-"} and len(lines[1]) == max(len(x) for x in lines)
    # numbers right-aligned: their last characters share one column
    assert lines[2].index("1.5") + 3 == lines[3].index("10.25") + 5
    # the CJK title takes two cells a character: the column after it starts where it should
    assert lines[2].startswith("a          ") and lines[3].startswith("long name  ")
    assert all(ln == ln.rstrip() for ln in lines)


def test_no_header_and_indent() -> None:
    text = text_table([["4.0", "Movie 1 (1991)"], ["5.0", "B"]], right={0}, indent=2)
    assert text.splitlines() == ["  4.0  Movie 1 (1991)", "  5.0  B"]
    assert text_table([]) == ""
