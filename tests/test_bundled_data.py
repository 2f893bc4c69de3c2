"""The bundled COCO sets: every listed image is there, the sets are disjoint."""

import json


def _image_ids(paths):
    records = json.loads(paths["annotations"].read_text())["images"]
    for record in records:
        assert (paths["images"] / record["file_name"]).is_file(), record
    return {record["id"] for record in records}


def test_bundled_sets_are_disjoint(coco_mini, coco_train, coco_extra):
    val = _image_ids(coco_mini)
    train = _image_ids(coco_train)
    extra = _image_ids(coco_extra)
    assert (len(val), len(train), len(extra)) == (43, 36, 71)
    assert not val & train and not val & extra and not train & extra
