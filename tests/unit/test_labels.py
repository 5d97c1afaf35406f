"""Class names: the bundled ImageNet list and users' labels files."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagerec.core.errors import ModelError
from imagerec.core.labels import imagenet_labels, load_labels

pytestmark = pytest.mark.unit


def test_imagenet_labels_are_the_1000_torchvision_names_in_index_order() -> None:
    # Given / When the bundled list
    labels = imagenet_labels()
    # Then it has 1000 distinct, trimmed names at the indices the model predicts
    assert len(labels) == 1000
    assert (
        len(set(labels)) == 1000
    )  # torchvision disambiguates "crane bird" and "maillot tank suit"
    assert all(name and name == name.strip() for name in labels)
    expected = {
        0: "tench",
        134: "crane bird",
        281: "tabby",
        282: "tiger cat",
        285: "Egyptian cat",
        335: "fox squirrel",
        400: "academic gown",
        517: "crane",
        638: "maillot",
        639: "maillot tank suit",
        652: "military uniform",
        657: "missile",
        667: "mortarboard",
        744: "projectile",
        967: "espresso",
        968: "cup",
        999: "toilet tissue",
    }
    assert {index: labels[index] for index in expected} == expected


def test_imagenet_labels_are_read_once() -> None:
    # Given / When the list is asked for twice, Then the same cached tuple comes back
    assert imagenet_labels() is imagenet_labels()


def test_load_labels_reads_one_name_per_line(tmp_path: Path) -> None:
    # Given a user's labels file with Windows line endings and a final newline
    path = tmp_path / "labels.txt"
    path.write_bytes("cat\r\ndog\r\ncrème brûlée\r\n".encode())
    # When it is loaded
    labels = load_labels(path)
    # Then the names come back in order
    assert labels == ("cat", "dog", "crème brûlée")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"cat\n\ndog\n", "blank line 2"),
        (b"cat\n   \n", "blank line 2"),
        (b"", "empty file"),
        (b"cat \n", "whitespace"),
        (b"\xff\xfe\x00", "UTF-8"),
    ],
    ids=["blank", "spaces-only", "empty", "trailing-space", "not-utf8"],
)
def test_load_labels_refuses_malformed_files(tmp_path: Path, content: bytes, message: str) -> None:
    # Given a malformed labels file
    path = tmp_path / "labels.txt"
    path.write_bytes(content)
    # When / Then loading it raises the typed model error, naming the problem
    with pytest.raises(ModelError, match=message):
        load_labels(path)


def test_load_labels_refuses_a_missing_file(tmp_path: Path) -> None:
    # Given a path with no file, When / Then
    with pytest.raises(ModelError, match="readable"):
        load_labels(tmp_path / "absent.txt")
