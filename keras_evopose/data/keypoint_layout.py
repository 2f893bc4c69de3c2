"""Keypoint names, left/right flip pairs, skeleton and body halves."""

import dataclasses
import json
import re

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


# Name tokens that mark a side, and their mirror image (case kept).
SIDE_TOKENS = {
    "left": "right", "right": "left", "Left": "Right", "Right": "Left",
    "LEFT": "RIGHT", "RIGHT": "LEFT", "l": "r", "r": "l", "L": "R", "R": "L",
}  # fmt: skip
# Words of a name: "LShoulder" -> L, Shoulder; "l_knee" -> l, knee.
_NAME_TOKEN = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
# Body parts above the hips, by side-free lowercase word (half-body).
UPPER_BODY_WORDS = frozenset(
    ("nose", "eye", "ear", "shoulder", "elbow", "wrist", "head", "neck",
     "hand", "mouth", "chin", "thumb", "finger", "face", "forehead")
)  # fmt: skip


class KeypointLayoutError(ValueError):
    """A keypoint layout cannot serve what is asked of it (flipping,
    OKS evaluation): the message names the joints or field and the fix."""


def _side_token(name):
    """The `re.Match` of the first side word of `name`, or `None`."""
    for match in _NAME_TOKEN.finditer(name):
        if match.group() in SIDE_TOKENS:
            return match
    # Run-together names: "leftknee", "RightKnee".
    return re.match(r"left|right|Left|Right|LEFT|RIGHT", name)


def mirror_name(name):
    """`name` with its side word swapped (`l_knee` -> `r_knee`,
    `LShoulder` -> `RShoulder`), or `None` when it names no side."""
    match = _side_token(name)
    if match is None:
        return None
    swapped = SIDE_TOKENS[match.group()]
    return name[: match.start()] + swapped + name[match.end() :]


def _side_free_words(name):
    return [
        word.lower()
        for word in _NAME_TOKEN.findall(name)
        if word not in SIDE_TOKENS
    ]


def _coco_name(name):
    """The COCO person keypoint `name` stands for (`l_knee` ->
    `left_knee`, `RHip` -> `right_hip`), or `None`."""
    match = _side_token(name)
    words = _side_free_words(name)
    if match is not None:
        side = "left" if match.group().lower() in ("l", "left") else "right"
        words = [side, *words]
    candidate = "_".join(words)
    return candidate if candidate in COCO_OKS_SIGMAS else None


def _pairs(value, what):
    try:
        pairs = tuple((int(a), int(b)) for a, b in value)
    except (TypeError, ValueError):
        raise ValueError(
            f"KeypointLayout: `{what}` must be a list of index pairs. "
            f"Received: {what}={value!r}"
        ) from None
    return pairs


@keras_evopose_export("keras_evopose.data.KeypointLayout")
@dataclasses.dataclass(frozen=True)
class KeypointLayout:
    """What the pipeline needs to know about a keypoint set.

    Nothing in the library assumes 17 COCO joints: the number of keypoints,
    the left/right pairs swapped by horizontal flips, the skeleton drawn by
    `predict`, the upper/lower body split used by half-body augmentation
    and the OKS constants of evaluation all come from here, normally read
    from the keypoint category of a COCO JSON by `from_category`. A
    trained `EvoPose2D` keeps its layout (`model.keypoint_layout`).

    Args:
        names: tuple of str, one name per keypoint, in heatmap order.
        flip_pairs: tuple of `(left, right)` index pairs swapped by a
            horizontal flip.
        skeleton: tuple of `(a, b)` 0-based index pairs (limbs).
        upper_body: tuple of int, indices of upper-body joints (the others
            are the lower body). Empty disables half-body augmentation.
        oks_sigmas: tuple of float per keypoint for OKS, or `None` (then
            the layout cannot be scored by OKS).

    Lists are accepted for every tuple, so `KeypointLayout(**config)`
    rebuilds a layout from `get_config()` (or from JSON).

    Example:

    >>> layout = keras_evopose.data.KeypointLayout.from_category(
    ...     {"keypoints": ["nose", "l_eye", "r_eye"],
    ...      "skeleton": [[1, 2], [1, 3]]})
    >>> layout.num_keypoints, layout.flip_pairs, layout.skeleton
    (3, ((1, 2),), ((0, 1), (0, 2)))
    >>> layout.oks_sigmas
    (0.026, 0.025, 0.025)
    """

    names: tuple
    flip_pairs: tuple = ()
    skeleton: tuple = ()
    upper_body: tuple = ()
    oks_sigmas: tuple = None

    def __post_init__(self):
        def set_field(name, value):
            object.__setattr__(self, name, value)

        if isinstance(self.names, str) or not self.names:
            raise ValueError(
                "KeypointLayout: `names` must be a non-empty list of "
                f"keypoint names. Received: names={self.names!r}"
            )
        names = tuple(str(name) for name in self.names)
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(
                f"KeypointLayout: keypoint names repeat: {duplicates}."
            )
        set_field("names", names)
        count = len(names)
        for field in ("flip_pairs", "skeleton"):
            pairs = _pairs(getattr(self, field), field)
            outside = [p for p in pairs if not all(0 <= i < count for i in p)]
            if outside:
                raise ValueError(
                    f"KeypointLayout: `{field}` {outside} index beyond the "
                    f"{count} keypoints (0-based indices)."
                )
            set_field(field, pairs)
        upper_body = tuple(int(index) for index in self.upper_body)
        if not all(0 <= index < count for index in upper_body):
            raise ValueError(
                f"KeypointLayout: `upper_body` {list(upper_body)} index "
                f"beyond the {count} keypoints."
            )
        set_field("upper_body", upper_body)
        if self.oks_sigmas is not None:
            sigmas = tuple(float(sigma) for sigma in self.oks_sigmas)
            if len(sigmas) != count or not all(s > 0 for s in sigmas):
                raise ValueError(
                    f"KeypointLayout: `oks_sigmas` must hold {count} "
                    f"positive numbers, one per keypoint. Received "
                    f"{len(sigmas)}: {list(sigmas)}"
                )
            set_field("oks_sigmas", sigmas)

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

    @property
    def missing_flip_pairs(self):
        """Name pairs that look left/right (`l_knee`/`r_knee`) but are not
        a flip pair: a horizontal flip would keep their labels wrong."""
        declared = {frozenset(pair) for pair in self.flip_pairs}
        index = {name: position for position, name in enumerate(self.names)}
        missing = []
        for position, name in enumerate(self.names):
            partner = index.get(mirror_name(name))
            if partner is None or partner < position:
                continue
            if frozenset((position, partner)) not in declared:
                missing.append((name, self.names[partner]))
        return tuple(missing)

    def check_flip(self, what="flipping"):
        """Raises `KeypointLayoutError` if a horizontal flip would
        mislabel joints: names that look paired (`missing_flip_pairs`)
        but are not flip pairs.

        Args:
            what: what flips, for the message (e.g. "flip augmentation").
        """
        missing = self.missing_flip_pairs
        if not missing:
            return
        shown = ", ".join(f"{a}/{b}" for a, b in missing[:4])
        shown += " ..." if len(missing) > 4 else ""
        raise KeypointLayoutError(
            f"{what} would mislabel keypoints {shown}: they look like "
            "left/right pairs but are not in the layout's flip pairs; add "
            'them to "flip_pairs" (pairs of names) in the category or '
            "--keypoint-layout FILE.json, or turn the flip off (--no-flip "
            "/ flip_probability=0 / flip_test=False)"
        )

    def check_oks_sigmas(self):
        """Raises `KeypointLayoutError` if OKS constants are missing."""
        if self.oks_sigmas is not None:
            return
        unknown = [name for name in self.names if _coco_name(name) is None]
        shown = ", ".join(unknown[:6]) + (" ..." if len(unknown) > 6 else "")
        raise KeypointLayoutError(
            f"OKS evaluation needs a sigma per keypoint and {shown} have "
            'no COCO default: add "oks_sigmas" (one per keypoint, in '
            "keypoint order) to the category or --keypoint-layout FILE.json"
        )

    def get_config(self):
        """The constructor arguments as JSON-ready lists."""
        return {
            "names": list(self.names),
            "flip_pairs": [list(pair) for pair in self.flip_pairs],
            "skeleton": [list(pair) for pair in self.skeleton],
            "upper_body": list(self.upper_body),
            "oks_sigmas": None
            if self.oks_sigmas is None
            else list(self.oks_sigmas),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @classmethod
    def from_names(
        cls, names, skeleton=(), flip_pairs=None, oks_sigmas=None,
        upper_body=None,
    ):  # fmt: skip
        """A layout from keypoint names, deriving what is not given.

        Args:
            names: keypoint names, in heatmap order.
            skeleton: 0-based index pairs.
            flip_pairs: pairs of names (or indices); `None` infers them
                from side words: `left_X`/`right_X`, `l_X`/`r_X`,
                `LX`/`RX` (any case, prefix or suffix).
            oks_sigmas: one float per keypoint; `None` uses COCO's
                constants when every name is a COCO joint (also as
                `l_knee`, `RHip`, ...), else no sigmas.
            upper_body: names (or indices) of the upper-body joints;
                `None` infers them from the names (eyes, shoulders,
                wrists, head, ...).
        """
        names = tuple(str(name) for name in names)
        index = {name: position for position, name in enumerate(names)}

        def position(joint, field):
            if isinstance(joint, str):
                if joint not in index:
                    raise ValueError(
                        f"KeypointLayout: `{field}` names {joint!r}, which "
                        f"is not a keypoint; the keypoints are {list(names)}."
                    )
                return index[joint]
            return int(joint)

        if flip_pairs is None:
            inferred = []
            for left, name in enumerate(names):
                partner = mirror_name(name)
                right = index.get(partner)
                if right is not None and left < right:
                    inferred.append((left, right))
            flip_pairs = inferred
        else:
            flip_pairs = [
                (position(a, "flip_pairs"), position(b, "flip_pairs"))
                for a, b in flip_pairs
            ]
        if upper_body is None:
            upper_body = tuple(
                position
                for position, name in enumerate(names)
                if UPPER_BODY_WORDS.intersection(_side_free_words(name))
            )
            if len(upper_body) in (0, len(names)):
                upper_body = ()
        else:
            upper_body = tuple(
                position(joint, "upper_body") for joint in upper_body
            )
        if oks_sigmas is None:
            coco_names = [_coco_name(name) for name in names]
            if None not in coco_names:
                oks_sigmas = tuple(COCO_OKS_SIGMAS[n] for n in coco_names)
        return cls(
            names=names,
            flip_pairs=tuple(flip_pairs),
            skeleton=_pairs(skeleton, "skeleton"),
            upper_body=upper_body,
            oks_sigmas=oks_sigmas,
        )

    @classmethod
    def coco_person(cls):
        """The 17-joint COCO person layout (`COCO_PERSON_CATEGORY`)."""
        return cls.from_category(COCO_PERSON_CATEGORY)

    @classmethod
    def from_category(cls, category, source="the category"):
        """Builds the layout of a COCO keypoint category dict.

        Reads `keypoints` (names) and the 1-based `skeleton`, and the
        optional `flip_pairs` (pairs of names), `oks_sigmas` (one per
        keypoint) and `upper_body` (names); what is missing is derived
        from the names (see `from_names`).

        Args:
            category: dict, e.g. `json["categories"][0]`.
            source: where it comes from, for error messages.
        """
        if not isinstance(category, dict) or not category.get("keypoints"):
            keys = sorted(category) if isinstance(category, dict) else []
            raise ValueError(
                f"{source} has no `keypoints` list of names (keys: {keys}); "
                'use a COCO keypoints category: {"keypoints": [names], '
                '"skeleton": [[1-based index pairs]]}.'
            )
        skeleton = category.get("skeleton") or ()
        try:
            skeleton = [(int(a) - 1, int(b) - 1) for a, b in skeleton]
        except (TypeError, ValueError):
            raise ValueError(
                f"{source}: `skeleton` must be a list of 1-based index "
                f"pairs. Received: {skeleton!r}"
            ) from None
        try:
            return cls.from_names(
                category["keypoints"],
                skeleton,
                flip_pairs=category.get("flip_pairs"),
                oks_sigmas=category.get("oks_sigmas"),
                upper_body=category.get("upper_body"),
            )
        except ValueError as error:
            message = str(error).replace("KeypointLayout: ", "")
            raise ValueError(f"{source}: {message}") from None

    @classmethod
    def from_json(cls, path):
        """The layout of a JSON file holding one keypoint category's fields
        (`keypoints`, `skeleton`, optional `flip_pairs`, `oks_sigmas`,
        `upper_body`), or a COCO file (its keypoint category)."""
        import tensorflow as tf

        with tf.io.gfile.GFile(str(path), "r") as handle:
            try:
                data = json.load(handle)
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"{path} is not valid JSON ({error}); pass a keypoint "
                    "layout file"
                ) from None
        if isinstance(data, dict) and "categories" in data:
            categories = [
                c
                for c in data["categories"] or []
                if isinstance(c, dict) and c.get("keypoints")
            ]
            data = categories[0] if categories else {}
        return cls.from_category(data, source=str(path))
