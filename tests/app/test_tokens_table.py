"""The Tokens tab's tables must not ask their model for every row: sizing columns to every row of a 25,000-word
vocabulary froze the window for over a second whenever the tab was shown or the window resized."""
from app.tokens.rows_table import WIDTH_ROWS, RowsModel, table

ROWS = 20_000


def test_a_large_vocabulary_table_reads_only_the_rows_it_shows(qtbot):
    model = RowsModel(("rank", "token", "id", "count", "share"))
    asked = set()
    view = table(model, 1)
    qtbot.addWidget(view)
    view.resize(500, 400)
    view.show()
    model.set_rows(ROWS, lambda r: (asked.add(r) or r + 1, f"token{r}", r, ROWS - r, 1 / ROWS))
    qtbot.wait(50)
    for size in ((700, 500), (400, 300), (800, 600)):   # resizing and showing again: no full scans either
        view.resize(*size)
        view.hide()
        view.show()
        qtbot.wait(20)
    assert 0 < len(asked) < 10 * WIDTH_ROWS   # the widths' sample, the last row and the rows on screen
    assert ROWS - 1 in asked                  # the longest rank is measured, so it is not cut off
    width_of_last = view.sizeHintForIndex(model.index(ROWS - 1, 0)).width()
    assert view.columnWidth(0) >= width_of_last
