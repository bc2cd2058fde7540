"""The decoding-order table (bench --orders) on a random tiny model with a random judge."""
import json
import subprocess
import sys

from arpg.evaluate import format_order_table, order_table
from arpg.judge import Judge
from arpg.pipeline import Pipeline
from demo.render import orders_figure


def test_order_table_rows_and_figure():
    pipe = Pipeline.random()
    pipe.judge = Judge().eval()
    res = order_table(pipe, ("random", "raster", "confidence"), (4,), per_class=2, batch=2, progress=False)
    assert [r["order"] for r in res["rows"]] == ["random", "raster", "confidence"]
    for r in res["rows"]:
        assert r["samples"] == 20 and 0 <= r["accuracy"] <= 1 and r["frechet"] >= -1e-6
    by = {r["order"]: r for r in res["rows"]}
    assert by["random"]["queries_per_image"] == 16 and by["confidence"]["queries_per_image"] > 16
    json.dumps(res)
    assert "confidence" in format_order_table(res)
    img = orders_figure(res)
    assert img.mode == "RGB" and img.width > 300


def test_bad_order_name_is_one_line():
    r = subprocess.run([sys.executable, "-m", "arpg", "bench", "--orders", "random,zigzag"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "zigzag" in r.stderr and "Traceback" not in r.stderr
