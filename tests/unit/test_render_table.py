"""render.table lays text columns out itself, exactly as tabulate's "simple" format does, and
asks tabulate about a cell only until each column has shown it is text: `status` at 10,000
flags spent most of its time in tabulate's per-cell type detection."""

from __future__ import annotations

import random

import pytest
import tabulate

from flagctl.cli import render

WORDS = ["f0", "true", "false", "on 5%", "off", "", " padded ", "x" * 30, "é", "12", "3.5", "1,000", "└ ws:1"]


@pytest.mark.parametrize("seed", range(200))
def test_the_table_is_tabulates_simple_layout(seed: int) -> None:
    rng = random.Random(seed)
    headers = [
        rng.choice(["flag", "value", "killed by", "v", "last change"]) for _ in range(rng.randint(1, 6))
    ]
    rows = [[rng.choice(WORDS) for _ in headers] for _ in range(rng.randint(0, 8))]
    cells = [[render._cell(c) for c in row] for row in rows]
    assert render.table(rows, headers) == tabulate.tabulate(cells, headers=headers, tablefmt="simple")


def test_a_blank_column_and_a_number_column() -> None:
    for rows in ([["a", ""], ["b", ""]], [["a", "1"], ["b", "22"]], [["a", "1"], ["b", "x"]]):
        expected = tabulate.tabulate(rows, headers=["flag", "n"], tablefmt="simple")
        assert render.table(rows, ["flag", "n"]) == expected


def test_ten_thousand_rows_ask_tabulate_about_one_cell_per_column(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[object] = []
    real = tabulate._type

    def counting(cell: object, *args: object, **kwargs: object) -> type:
        asked.append(cell)
        return real(cell, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(tabulate, "_type", counting)
    rows = [(f"f{i}", "true", "on", "", "", "") for i in range(10_000)]
    rows[0] = ("f0", "true", "on", "", "every", "2026-01-01 bench: x")  # nothing at all under "stage"
    text = render.table(rows, ["flag", "value", "effective", "stage", "killed by", "last change"])
    assert text.splitlines()[:3] == [
        "flag    value    effective    stage    killed by    last change",
        "------  -------  -----------  -------  -----------  -------------------",
        "f0      true     on                    every        2026-01-01 bench: x",
    ]
    assert len(text.splitlines()) == 10_002
    assert len(asked) == 5  # the first row shows each column is text; 60,000 cells before
