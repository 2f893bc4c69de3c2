"""Weight transfer from a trained parent network to a mutated child.

EvoPose2D's "relaxed function preservation": a child that differs from its
parent by one gene starts from the parent's weights, matched by variable
path, so it needs a few epochs of training instead of a full run.
"""

import dataclasses
import re

import keras
import numpy as np

from keras_evopose.api_export import keras_evopose_export

# `stage3_block2/dwconv/kernel` (Keras 3 paths) or `stage3_block2_dwconv`
# (flat names), optionally below a prefix: (prefix + stage, block, role).
BLOCK_PATH = re.compile(
    r"^(?P<stage>(?:.*/)?stage\d+_block)(?P<block>\d+)"
    r"(?P<role>[/_].+)$"
)

# `head/deconv3/kernel`, `head/deconv3_bn/gamma` (Keras 3) or
# `head_deconv3_bn` (flat): the upsampling steps of the heatmap head, in the
# groups of `BLOCK_PATH` (prefix, step number, role).
HEAD_STEP_PATH = re.compile(
    r"^(?P<stage>(?:.*/)?head[/_]deconv)(?P<block>\d+)(?P<role>[/_].+)$"
)

COPIED = "copied"
ADAPTED = "adapted"
ZEROED = "zeroed"
FRESH = "fresh"

# The last BN of an MBConv block's residual branch: zero gamma and beta make
# the branch output 0, so `input + branch` is the identity.
RESIDUAL_BRANCH_BN = ("project_bn/gamma", "project_bn/beta")

# Per-axis roles of a weight array. A new entry (one the parent lacks) along
# an OUTPUT axis keeps the child's own value (its initializer's draw): it is
# a new unit. A new entry along an INPUT or SPATIAL axis only (a new
# connection into an existing unit, a new kernel tap) is set to zero, so the
# child computes what the parent computed.
SPATIAL = "spatial"
INPUT = "input"
OUTPUT = "output"


@keras_evopose_export("keras_evopose.search.TransferEntry")
@dataclasses.dataclass(frozen=True)
class TransferEntry:
    """What `transfer_weights` did with one child variable.

    Attributes:
        path: the child variable's path, e.g. `stage2_block1/dwconv/kernel`.
        status: `"copied"` (same shape, values copied), `"adapted"` (shapes
            differ: overlap copied, the rest filled by the documented rule),
            `"zeroed"` (the last BN gamma or beta of a new repeat, set to
            zero so the block starts as an identity) or `"fresh"` (no
            usable parent variable: child value kept).
        source: the parent variable's path, or `None` when fresh.
        shape: the child variable's shape.
        source_shape: the parent variable's shape, or `None`.
        reason: why a variable stayed fresh or was zeroed (empty
            otherwise).
    """

    path: str
    status: str
    source: str = None
    shape: tuple = ()
    source_shape: tuple = None
    reason: str = ""

    def describe(self):
        """One line: status, path, shapes and source."""
        if self.status == FRESH:
            return f"{self.status:8s}{self.path} {self.shape}: {self.reason}"
        text = f"{self.status:8s}{self.path} {self.shape}"
        if self.source != self.path or self.source_shape != self.shape:
            text += f" <- {self.source} {self.source_shape}"
        if self.reason:
            text += f": {self.reason}"
        return text


@keras_evopose_export("keras_evopose.search.TransferReport")
@dataclasses.dataclass
class TransferReport:
    """The result of `transfer_weights`: one `TransferEntry` per child variable.

    `print(report)` shows the counts, the structural notes and every
    variable that was not a plain same-path copy;
    `report.summary(show_all=True)` lists all of them.

    Attributes:
        entries: list of `TransferEntry`, in the child's variable order.
        unused_parent_paths: parent variables no child variable took values
            from (e.g. the blocks of a removed repeat).
        notes: list of str, one per structural change that decides whether
            the child starts with the parent's function: each new repeat
            (started as an identity, or why it could not be) and each
            changed stride (weights kept, function not preserved).
    """

    entries: list
    unused_parent_paths: list
    notes: list = dataclasses.field(default_factory=list)

    def _paths(self, status):
        return [e.path for e in self.entries if e.status == status]

    @property
    def copied(self):
        """Paths of the child variables copied unchanged."""
        return self._paths(COPIED)

    @property
    def adapted(self):
        """Paths of the child variables filled from a differently shaped one."""
        return self._paths(ADAPTED)

    @property
    def zeroed(self):
        """Paths of the child variables set to zero (new-repeat identity)."""
        return self._paths(ZEROED)

    @property
    def fresh(self):
        """Paths of the child variables that kept their own values."""
        return self._paths(FRESH)

    def __getitem__(self, path):
        for entry in self.entries:
            if entry.path == path:
                return entry
        raise KeyError(path)

    def summary(self, show_all=False):
        """Counts, then one line per variable that is not a same-path copy.

        Args:
            show_all: list every variable, same-path copies included.

        Returns:
            str.
        """
        lines = [
            f"Weight transfer: {len(self.entries)} child variables: "
            f"{len(self.copied)} copied, {len(self.adapted)} adapted, "
            f"{len(self.zeroed)} zeroed, {len(self.fresh)} fresh; "
            f"{len(self.unused_parent_paths)} parent variables unused."
        ]
        lines.extend(f"  note    {note}" for note in self.notes)
        for entry in self.entries:
            plain = (
                entry.status == COPIED
                and entry.source == entry.path
                and entry.source_shape == entry.shape
            )
            if show_all or not plain:
                lines.append("  " + entry.describe())
        if show_all or self.unused_parent_paths:
            for path in self.unused_parent_paths:
                lines.append(f"  unused  {path} (parent)")
        return "\n".join(lines)

    def __str__(self):
        return self.summary()

    def to_dict(self):
        """JSON-ready dict (lists instead of tuples)."""
        return {
            "entries": [
                {
                    "path": e.path,
                    "status": e.status,
                    "source": e.source,
                    "shape": list(e.shape),
                    "source_shape": (
                        None if e.source_shape is None else list(e.source_shape)
                    ),
                    "reason": e.reason,
                }
                for e in self.entries
            ],
            "unused_parent_paths": list(self.unused_parent_paths),
            "notes": list(self.notes),
        }


def _variables_by_path(model, argument):
    if not isinstance(model, keras.layers.Layer):
        raise ValueError(
            f"transfer_weights: `{argument}` must be a Keras model or layer. "
            f"Received: {argument}={type(model).__name__}"
        )
    variables = {}
    for variable in model.weights:
        if variable.path in variables:
            raise ValueError(
                f"transfer_weights: two variables of `{argument}` share the "
                f"path {variable.path!r}, so matching by path is ambiguous. "
                "Give its layers unique names."
            )
        variables[variable.path] = variable
    return variables


def _all_layers(model):
    if hasattr(model, "_flatten_layers"):
        return list(model._flatten_layers(include_self=True, recursive=True))
    return [model]


def _owning_layers(model):
    """Maps `id(variable)` to the innermost layer that holds it."""
    owners = {}
    counts = {}
    for layer in _all_layers(model):
        weights = layer.weights
        for variable in weights:
            key = id(variable)
            if key not in owners or len(weights) < counts[key]:
                owners[key] = layer
                counts[key] = len(weights)
    return owners


def _axis_roles(layer, variable):
    """Per-axis roles (`SPATIAL`, `INPUT`, `OUTPUT`) of a weight array."""
    ndim = len(variable.shape)
    name = variable.path.rsplit("/", 1)[-1]
    if name != "kernel" or ndim < 2:
        # Biases, BN gamma/beta/moving statistics, anything per unit.
        return (OUTPUT,) * ndim
    spatial = (SPATIAL,) * (ndim - 2)
    depthwise = (
        keras.layers.DepthwiseConv1D,
        keras.layers.DepthwiseConv2D,
    )
    transposed = (
        keras.layers.Conv1DTranspose,
        keras.layers.Conv2DTranspose,
        keras.layers.Conv3DTranspose,
    )
    if isinstance(layer, depthwise):
        # (*spatial, channels, multiplier): every channel is its own unit.
        return spatial + (OUTPUT, OUTPUT)
    if isinstance(layer, transposed):
        return spatial + (OUTPUT, INPUT)
    # Conv1D/2D/3D, Dense, and the usual (*spatial, in, out) kernel layout.
    return spatial + (INPUT, OUTPUT)


def adapt_array(parent_value, child_value, roles):
    """Places `parent_value` into an array of `child_value`'s shape.

    The overlap is centred along `SPATIAL` axes (a 3x3 kernel sits in the
    middle of a 5x5 one; a 5x5 kernel is cropped to its central 3x3) and
    leading along the other axes (the first channels). Entries outside the
    overlap are the child's own values where they lie beyond the parent along
    an `OUTPUT` axis (new units) and zero otherwise (new inputs of existing
    units, new kernel taps), so growth preserves the parent's function.

    Args:
        parent_value: numpy array.
        child_value: numpy array of the same rank.
        roles: one role per axis.

    Returns:
        A numpy array with `child_value`'s shape and dtype.
    """
    parent_value = np.asarray(parent_value)
    child_value = np.asarray(child_value)
    result = np.zeros(child_value.shape, dtype=child_value.dtype)
    new_unit = np.zeros(child_value.shape, dtype=bool)
    parent_slices, child_slices = [], []
    for axis, role in enumerate(roles):
        p, c = parent_value.shape[axis], child_value.shape[axis]
        n = min(p, c)
        if role == SPATIAL:
            parent_start, child_start = (p - n) // 2, (c - n) // 2
        else:
            parent_start = child_start = 0
        parent_slices.append(slice(parent_start, parent_start + n))
        child_slices.append(slice(child_start, child_start + n))
        if role == OUTPUT and c > p:
            index_shape = [1] * child_value.ndim
            index_shape[axis] = c
            new_unit |= (np.arange(c) >= p).reshape(index_shape)
    result[new_unit] = child_value[new_unit]
    result[tuple(child_slices)] = parent_value[tuple(parent_slices)]
    return result


def _last_block_sources(parent_paths, pattern=BLOCK_PATH):
    """Maps (stage prefix, role) to the path of the stage's last block
    (or, with `HEAD_STEP_PATH`, of the head's last upsampling step)."""
    last = {}
    for path in parent_paths:
        match = pattern.match(path)
        if match is None:
            continue
        key = (match["stage"], match["role"])
        block = int(match["block"])  # numeric: block10 comes after block9
        if key not in last or block > last[key][0]:
            last[key] = (block, path)
    return {key: path for key, (_, path) in last.items()}


def _block_name(match):
    """`stage3_block2` from a `BLOCK_PATH` match (any prefix dropped)."""
    return match["stage"].rsplit("/", 1)[-1] + match["block"]


def _has_identity_shortcut(layers_by_name, block_name):
    """Whether block `block_name` of a model adds its input to its branch.

    `True`/`False` for an `MBConvBlock` (its `add` sublayer) or a flat
    twin (a layer `<block>_add`); `None` when the model holds neither.
    """
    block = layers_by_name.get(block_name)
    if block is not None and hasattr(block, "sublayers"):
        return "add" in block.sublayers
    if f"{block_name}_add" in layers_by_name:
        return True
    if f"{block_name}_project_bn" in layers_by_name:
        return False
    return None


def strides_by_layer_path(model):
    """`{layer path: strides}` of every strided layer that owns weights
    (`stage4_block1/dwconv: (2, 2)`)."""
    return {
        variable.path.rsplit("/", 1)[0]: tuple(layer.strides)
        for variable, layer in _layers_with_strides(model)
    }


def _stride_notes(parent_strides, child):
    """One note per layer whose stride differs between parent and child."""
    parent_strides = dict(parent_strides)
    notes = []
    for variable, layer in _layers_with_strides(child):
        owner_path = variable.path.rsplit("/", 1)[0]
        old = parent_strides.pop(owner_path, None)
        new = tuple(layer.strides)
        if old is not None and old != new:
            notes.append(
                f"{owner_path}: stride {old} -> {new}. Every weight is "
                "kept (no shape depends on the stride), but the layers "
                "after it see features at another scale, so the child "
                "does not start with the parent's function."
            )
    return notes


def _layers_with_strides(model):
    """`(first variable, owning layer)` of every strided layer."""
    owners = _owning_layers(model)
    seen = set()
    for variable in model.weights:
        layer = owners.get(id(variable))
        if layer is None or id(layer) in seen:
            continue
        seen.add(id(layer))
        if getattr(layer, "strides", None) is not None:
            yield variable, layer


def _head_step_notes(parent_paths, child_paths):
    """A note when the head's number of upsampling steps changed."""

    def num_steps(paths):
        steps = [HEAD_STEP_PATH.match(path) for path in paths]
        return max((int(m["block"]) for m in steps if m), default=0)

    old, new = num_steps(parent_paths), num_steps(child_paths)
    if old == new or not old or not new:
        return []

    def steps(first, last):
        return f"step {first}" if first == last else f"steps {first}-{last}"

    change = (
        f"new {steps(old + 1, new)} copy the parent's last step (deconv{old})"
        if new > old
        else f"the parent's {steps(new + 1, old)} dropped"
    )
    return [
        f"head: {old} -> {new} upsampling steps; {change}. The heatmaps "
        f"are {2 ** abs(new - old)}x {'larger' if new > old else 'smaller'} "
        "per side, so the child does not start with the parent's function."
    ]


def _to_numpy(variable):
    return np.asarray(keras.ops.convert_to_numpy(variable.value))


def _numpy_dtype(variable):
    return keras.backend.standardize_dtype(variable.dtype)


@keras_evopose_export("keras_evopose.search.transfer_weights")
def transfer_weights(parent, child):
    """Initialises `child` from `parent`'s weights, matched by variable path.

    For every variable of `child` (trainable and BN statistics):

    1. The parent has a variable at the same path (`stage3_block1/dwconv/
       kernel`): it is the source.
    2. Otherwise, for a block the parent lacks (`stage2_block4` when the
       parent's stage 2 has 3 repeats), the source is the same role in the
       parent's **last block of the same stage** (`stage2_block3/dwconv/
       kernel`). The new block's residual branch then ends in a zero: its
       `project_bn` gamma and beta are set to 0, so the block adds nothing
       to its identity shortcut and the child starts with the parent's
       function (zero-init residual BN, Goyal et al. 2017). A new repeat
       is always its stage's last block (stride 1, equal input and output
       widths), so it always has that shortcut; a block that has none
       keeps the copy and the report says it is not an identity.
    3. Likewise, a head upsampling step the parent lacks (`head/deconv4`
       when the parent's head has 3 steps, after a head-gene mutation)
       takes the same role in the parent's last step (`head/deconv3`);
       the report notes that the heatmap resolution changed.
    4. Otherwise the child keeps its own value and the report lists it as
       fresh, with the reason.

    Same shape: copied. Different shape (kernel size, channels): the
    overlap is copied, centred along the kernel's spatial axes and leading
    along channel axes; new output units (channels, SE units) keep the
    child's initial values, and new connections into existing units (input
    channels, outer kernel taps) are zero. Growing a kernel or a width
    therefore leaves the network's function unchanged; shrinking crops.
    BN vectors follow the output rule: new channels keep the child's
    initial gamma 1, beta 0, moving mean 0, moving variance 1.

    A changed stride changes no shape: every weight is copied, and the
    report notes that the function is not preserved (the later layers see
    features at another scale).

    Works on any Keras backend and inside a `tf.distribute` strategy scope
    (values go through numpy and `Variable.assign`).

    Args:
        parent: a built Keras model (the trained parent).
        child: a built Keras model (the mutated child), modified in place.

    Returns:
        A `keras_evopose.search.TransferReport`.

    Raises:
        ValueError: when no child variable has a source in the parent (the
            two models share no variable names), or when a model has two
            variables at one path.

    Example:

    >>> parent = keras_evopose.models.EvoPose2D.from_preset("test")
    >>> genotype = list(parent.backbone.genotype)
    >>> genotype[2] = genotype[2].replace("_k5_", "_k3_")
    >>> child = keras_evopose.models.EvoPose2D.from_preset(
    ...     "test", genotype=genotype)
    >>> report = keras_evopose.search.transfer_weights(parent, child)
    >>> report.adapted
    ['stage3_block1/dwconv/kernel', 'stage3_block2/dwconv/kernel']
    >>> len(report.fresh)
    0
    """
    return transfer_from_variables(
        _variables_by_path(parent, "parent"),
        child,
        parent_strides=strides_by_layer_path(parent),
    )


def transfer_from_variables(parent_variables, child, parent_strides=None):
    """`transfer_weights` from `{path: variable}` named like the child's.

    The parent's variables may come from any network once their paths are
    renamed to this library's scheme (`load_efficientnet_weights` maps
    `keras.applications` EfficientNet names this way).

    Args:
        parent_variables: dict from a child-style path to a Keras variable.
        child: a built Keras model, modified in place.
        parent_strides: optional `{layer path: strides}` of the parent
            (`strides_by_layer_path`), for the stride notes.

    Returns:
        A `TransferReport`.
    """
    child_variables = _variables_by_path(child, "child")
    last_blocks = _last_block_sources(parent_variables)
    last_head_steps = _last_block_sources(parent_variables, HEAD_STEP_PATH)
    owners = _owning_layers(child)

    plan = []
    new_blocks = {}  # child block name -> parent block it copies
    for path, variable in child_variables.items():
        source = path if path in parent_variables else None
        if source is None:
            match = BLOCK_PATH.match(path)
            if match is not None:
                source = last_blocks.get((match["stage"], match["role"]))
                if source is not None:
                    new_blocks[_block_name(match)] = _block_name(
                        BLOCK_PATH.match(source)
                    )
            match = HEAD_STEP_PATH.match(path)
            if match is not None:
                source = last_head_steps.get((match["stage"], match["role"]))
        plan.append((path, variable, source))
    layers_by_name = {layer.name: layer for layer in _all_layers(child)}
    identity_blocks = {
        name
        for name in new_blocks
        if _has_identity_shortcut(layers_by_name, name)
    }
    if not any(source is not None for _, _, source in plan):
        raise ValueError(
            "transfer_weights: `parent` and `child` share no variable paths "
            f"(child has e.g. {list(child_variables)[:3]}, parent has e.g. "
            f"{list(parent_variables)[:3]}), so nothing can be transferred. "
            "Weight transfer is meant for two networks built by this "
            "library (stable names such as 'stage2_block1/dwconv/kernel')."
        )

    entries = []
    used = set()
    for path, variable, source in plan:
        shape = tuple(variable.shape)
        if source is None:
            entries.append(
                TransferEntry(
                    path,
                    FRESH,
                    shape=shape,
                    reason="no parent variable at this path or in the "
                    "same role of the stage's last block or head step",
                )
            )
            continue
        source_variable = parent_variables[source]
        source_shape = tuple(source_variable.shape)
        if len(source_shape) != len(shape):
            entries.append(
                TransferEntry(
                    path,
                    FRESH,
                    source=None,
                    shape=shape,
                    source_shape=source_shape,
                    reason=f"parent {source} has rank {len(source_shape)}, "
                    f"child has rank {len(shape)}",
                )
            )
            continue
        used.add(source)
        parent_value = _to_numpy(source_variable)
        reason = ""
        if source_shape == shape:
            value, status = parent_value, COPIED
        else:
            roles = _axis_roles(owners.get(id(variable)), variable)
            value = adapt_array(parent_value, _to_numpy(variable), roles)
            status = ADAPTED
        match = BLOCK_PATH.match(path)
        if (
            match is not None
            and _block_name(match) in identity_blocks
            and match["role"].endswith(RESIDUAL_BRANCH_BN)
        ):
            value = np.zeros_like(value)
            status = ZEROED
            reason = "new repeat: its residual branch starts at zero"
        variable.assign(value.astype(_numpy_dtype(variable)))
        entries.append(
            TransferEntry(path, status, source, shape, source_shape, reason)
        )
    unused = [path for path in parent_variables if path not in used]
    notes = []
    for name, source_block in new_blocks.items():
        if name in identity_blocks:
            notes.append(
                f"{name}: new repeat, a copy of {source_block} with "
                "project_bn gamma and beta at zero, so it starts as an "
                "identity."
            )
        else:
            notes.append(
                f"{name}: new repeat, a copy of {source_block}. It has no "
                "identity shortcut (or none was found), so it cannot start "
                "as an identity: the child's function differs from the "
                "parent's."
            )
    notes.extend(_stride_notes(parent_strides or {}, child))
    notes.extend(_head_step_notes(parent_variables, child_variables))
    return TransferReport(
        entries=entries, unused_parent_paths=unused, notes=notes
    )
