"""Keypoint names, left/right flip pairs, skeleton and body halves."""

import dataclasses

from keras_evopose.api_export import keras_evopose_export

# Joints of the upper body for half-body augmentation, by COCO name. Any
# layout whose names match these gets half-body support for free; other
# layouts pass `upper_body` explicitly.
UPPER_BODY_NAMES = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
)

# The COCO person keypoints and skeleton (1-based, as in the COCO JSON),
# used only where no JSON is at hand (e.g. `keras-evopose predict`).
COCO_PERSON_CATEGORY = {
    "keypoints": [
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
        "right_knee", "left_ankle", "right_ankle",
    ],
    "skeleton": [
        [16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13],
        [6, 7], [6, 8], [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3],
        [2, 4], [3, 5], [4, 6], [5, 7],
    ],
}  # fmt: skip

# COCO's per-keypoint OKS constants (pycocotools' defaults), by name.
COCO_OKS_SIGMAS = {
    "nose": 0.026,
    "left_eye": 0.025,
    "right_eye": 0.025,
    "left_ear": 0.035,
    "right_ear": 0.035,
    "left_shoulder": 0.079,
    "right_shoulder": 0.079,
    "left_elbow": 0.072,
    "right_elbow": 0.072,
    "left_wrist": 0.062,
    "right_wrist": 0.062,
    "left_hip": 0.107,
    "right_hip": 0.107,
    "left_knee": 0.087,
    "right_knee": 0.087,
    "left_ankle": 0.089,
    "right_ankle": 0.089,
}


@keras_evopose_export("keras_evopose.data.KeypointLayout")
@dataclasses.dataclass(frozen=True)
class KeypointLayout:
    """What the pipeline needs to know about a keypoint set.

    Nothing in the library assumes 17 COCO joints: the number of keypoints,
    the left/right pairs swapped by horizontal flips, the skeleton drawn by
    `predict` and the upper/lower body split used by half-body augmentation
    all come from here, normally read from the keypoint category of a COCO
    JSON by `from_category`.

    Args:
        names: tuple of str, one name per keypoint, in heatmap order.
        flip_pairs: tuple of `(left, right)` index pairs swapped by a
            horizontal flip.
        skeleton: tuple of `(a, b)` 0-based index pairs (limbs).
        upper_body: tuple of int, indices of upper-body joints (the others
            are the lower body). Empty disables half-body augmentation.
        oks_sigmas: tuple of float per keypoint for OKS, or `None` (then
            only pycocotools' 17-joint COCO default can be used).

    Example:

    >>> layout = keras_evopose.data.KeypointLayout.from_category(
    ...     {"keypoints": ["nose", "left_eye", "right_eye"],
    ...      "skeleton": [[1, 2], [1, 3]]})
    >>> layout.num_keypoints, layout.flip_pairs, layout.skeleton
    (3, ((1, 2),), ((0, 1), (0, 2)))
    """

    names: tuple
    flip_pairs: tuple = ()
    skeleton: tuple = ()
    upper_body: tuple = ()
    oks_sigmas: tuple = None

    @property
    def num_keypoints(self):
        return len(self.names)

    @property
    def flip_permutation(self):
        """Index list that reorders joints after a horizontal flip."""
        permutation = list(range(self.num_keypoints))
        for left, right in self.flip_pairs:
            permutation[left], permutation[right] = right, left
        return permutation

    @classmethod
    def from_names(cls, names, skeleton=()):
        """Derives flip pairs (`left_X` <-> `right_X`), the upper body and
        OKS sigmas from keypoint names; `skeleton` is 0-based."""
        names = tuple(str(name) for name in names)
        index = {name: position for position, name in enumerate(names)}
        flip_pairs = []
        for position, name in enumerate(names):
            if name.startswith("left_"):
                partner = "right_" + name[len("left_") :]
                if partner in index:
                    flip_pairs.append((position, index[partner]))
        upper_body = tuple(
            position
            for position, name in enumerate(names)
            if name in UPPER_BODY_NAMES
        )
        if len(upper_body) in (0, len(names)):
            upper_body = ()
        sigmas = None
        if all(name in COCO_OKS_SIGMAS for name in names):
            sigmas = tuple(COCO_OKS_SIGMAS[name] for name in names)
        return cls(
            names=names,
            flip_pairs=tuple(flip_pairs),
            skeleton=tuple((int(a), int(b)) for a, b in skeleton),
            upper_body=upper_body,
            oks_sigmas=sigmas,
        )

    @classmethod
    def coco_person(cls):
        """The 17-joint COCO person layout (`COCO_PERSON_CATEGORY`)."""
        return cls.from_category(COCO_PERSON_CATEGORY)

    @classmethod
    def from_category(cls, category):
        """Builds the layout of a COCO keypoint category dict (its
        `keypoints` names and 1-based `skeleton`)."""
        if not category.get("keypoints"):
            raise ValueError(
                "KeypointLayout.from_category: the category has no "
                "`keypoints` list of names. Received keys: "
                f"{sorted(category)}. Use a COCO keypoints JSON."
            )
        skeleton = [(a - 1, b - 1) for a, b in category.get("skeleton", ())]
        return cls.from_names(category["keypoints"], skeleton)
