"""Split one COCO keypoints file into train and validation files by image."""

import json
import pathlib

from keras_evopose.api_export import keras_evopose_export
from keras_evopose.utils.state_files import write_json_atomically


def read_coco_json(path):
    """A COCO keypoints JSON as a dict; a clear error for anything else."""
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"COCO annotations {path} do not exist; pass the path of a COCO "
            "keypoints JSON (e.g. person_keypoints_val2017.json)"
        )
    from keras_evopose.data.coco_instances import DataFileError

    try:
        text = path.read_text()
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        what = "is empty" if not path.stat().st_size else "is not valid JSON"
        raise DataFileError(
            f"{path} {what} ({error}); check the path or copy the file again"
        ) from None
    missing = [
        key
        for key in ("images", "annotations")
        if not isinstance(data, dict) or key not in data
    ]
    if missing:
        raise DataFileError(
            f"{path} is not a COCO keypoints file: it has no "
            f"{' and no '.join(repr(m) for m in missing)} list (a COCO "
            "file holds 'images', 'annotations' and 'categories')"
        )
    return data


@keras_evopose_export("keras_evopose.data.split_coco_by_image")
def split_coco_by_image(annotations, output_dir, val_fraction=0.25):
    """Splits a COCO keypoints JSON by image id into train and val files.

    Images are sorted by id; every `round(1 / val_fraction)`-th one (the
    last of each group) is a validation image, so the split is the same on
    every machine and every run. Both files keep every other key of the
    input (categories, info, licenses).

    Args:
        annotations: path of a COCO keypoints JSON.
        output_dir: folder for `search_train.json` and `search_val.json`.
        val_fraction: float in (0, 1), the share held out.

    Returns:
        The paths `(train, val)`.

    Raises:
        FileNotFoundError: `annotations` does not exist.
        ValueError: it is not a COCO keypoints file, or `val_fraction` is
            out of range.
    """
    if not 0 < float(val_fraction) < 1:
        raise ValueError(
            f"val_fraction must be between 0 and 1; received {val_fraction!r}"
        )
    data = read_coco_json(annotations)
    period = max(2, round(1 / float(val_fraction)))
    image_ids = sorted(image["id"] for image in data["images"])
    val_ids = {i for n, i in enumerate(image_ids) if n % period == period - 1}
    output_dir = pathlib.Path(output_dir)
    paths = []
    for split, is_val in (("search_train", False), ("search_val", True)):
        part = dict(data)
        part["images"] = [
            im for im in data["images"] if (im["id"] in val_ids) == is_val
        ]
        part["annotations"] = [
            a
            for a in data["annotations"]
            if (a["image_id"] in val_ids) == is_val
        ]
        paths.append(write_json_atomically(output_dir / f"{split}.json", part))
    return tuple(paths)
