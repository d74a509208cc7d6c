"""`evalkit eval --task all`: every task runs through the one generator and the summary page
lists each with its headline value (equal to its results.json) and its model's published numbers,
which for the tiny pipeline-check model are none."""
from evalkit.cli.commands import main
from evalkit.registry import TASKS
from evalkit.results.schema import read_run
from tests.helpers.htmldom import parse


def test_all_tasks_and_summary(tmp_path, tiny_cache, capsys):
    runs = tmp_path / "runs"
    assert main(["eval", "--task", "all", "--limit", "2", "--runs-dir", str(runs), "--cache-dir", str(tiny_cache),
                 "--no-progress", "--device", "cpu"]) == 0
    page = parse((runs / "summary.html").read_text())
    rows = {r.attrs["data-task"]: r for r in page.find_all("tr", cls="task")}
    assert sorted(rows) == TASKS.names()
    for name, row in rows.items():
        res, _ = read_run(runs / f"{name}-tiny-idefics2-nosplit")
        value = res.metrics[res.headline]["value"]
        assert row.one("td", cls="value").text().strip() == ("—" if value is None else f"{value:.1f}")
        # random weights match no published number: no card value is set beside the score
        assert row.one("td", cls="card-no-split").text().strip() == "—"
        assert "No published number matches this model." in row.one("td", cls="run").text()
        assert row.one("a").attrs["href"] == f"{name}-tiny-idefics2-nosplit/report.html"
    assert page.find_all(id="banner-pipeline-check")
    assert rows["docvqa"].one("td", cls="card-split").text().strip() == "—"
