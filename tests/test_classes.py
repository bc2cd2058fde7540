"""assets/imagenet_classes.txt: the 1000 ImageNet-1k class names in the standard index order
(the order PyTorch/timm classifiers and class-conditional ImageNet generators use)."""

from pathlib import Path

import pytest

from arpg.card import imagenet_class_names
from arpg.zoo import ASSETS

CLASSES = Path(__file__).resolve().parent.parent / "assets" / "imagenet_classes.txt"


@pytest.fixture(scope="module")
def names() -> list[str]:
    return CLASSES.read_text(encoding="utf-8").splitlines()


def test_exactly_1000_non_empty_unique_lines(names):
    assert len(names) == 1000
    assert all(n and n == n.strip() for n in names)
    assert len(set(names)) == 1000
    # unique even ignoring case ("Cardigan" the corgi vs "cardigan" the sweater)
    assert len({n.lower() for n in names}) == 1000


def test_no_index_numbers_or_wordnet_ids(names):
    assert not any(n.split()[0].rstrip(":,").isdigit() for n in names)
    assert not any(n.startswith("n0") and n[1:9].isdigit() for n in names)


@pytest.mark.parametrize(
    "index, name",
    [
        (0, "tench"),
        (1, "goldfish"),
        (2, "great white shark"),
        (134, "crane (bird)"),
        (151, "Chihuahua"),
        (207, "golden retriever"),
        (264, "Cardigan (Welsh corgi)"),
        (281, "tabby"),
        (388, "giant panda"),
        (417, "balloon"),
        (474, "cardigan"),
        (517, "crane (machine)"),
        (638, "maillot"),
        (639, "maillot (tank suit)"),
        (778, "scale"),
        (949, "strawberry"),
        (980, "volcano"),
        (999, "toilet tissue"),
    ],
)
def test_spot_checks(names, index, name):
    assert names[index] == name


def test_pipeline_loads_the_names(names):
    assert imagenet_class_names(ASSETS) == names
