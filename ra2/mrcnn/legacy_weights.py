"""The one place that reads and writes matterport-format (Keras 2) legacy HDF5 weight files.

Layout of such a file (what Keras 2's ``model.save_weights("x.h5")`` wrote, e.g.
``mask_rcnn_coco.h5`` and the thesis's trained detectors)::

    /                          attrs: layer_names = [b"conv1", b"bn_conv1", ...] (model order),
                                      backend, keras_version
    /conv1                     attrs: weight_names = [b"conv1/kernel:0", b"conv1/bias:0"]
    /conv1/conv1/kernel:0      dataset (the weight name is a path inside the layer's group)
    /conv1/conv1/bias:0        dataset
    /bn_conv1                  attrs: weight_names = [b"bn_conv1/gamma:0", b"bn_conv1/beta:0",
                                      b"bn_conv1/moving_mean:0", b"bn_conv1/moving_variance:0"]
    /input_image               attrs: weight_names = []  (layers without weights are listed too)

Files written by Keras 2's ``model.save`` hold the same tree under a top ``model_weights`` group.

Weights are assigned to the Keras 3 model's layers by layer name (``by_name=True``, the way
matterport loads COCO weights) or in order of the layers that have weights (``by_name=False``).
A ``TimeDistributed`` wrapper is found under its own name (matterport names the wrapper, e.g.
``mrcnn_mask_conv1``). Within a layer, weights are matched by their ``layer/variable`` names when
both sides agree on them (nested models such as matterport's ``rpn_model``), otherwise in the
layer's ``weights`` order (kernel, bias; gamma, beta, moving_mean, moving_variance).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

#: Default weight names by number of arrays, for ``write_legacy_h5`` given bare arrays.
DEFAULT_WEIGHT_NAMES = {
    1: ("kernel",),
    2: ("kernel", "bias"),
    4: ("gamma", "beta", "moving_mean", "moving_variance"),
}


def _decode(values: Iterable) -> list[str]:
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def _weights_group(handle):
    """The h5py group holding ``layer_names`` (the root, or ``model_weights`` of a full save)."""
    if "layer_names" in handle.attrs:
        return handle
    if "model_weights" in handle and "layer_names" in handle["model_weights"].attrs:
        return handle["model_weights"]
    return None


def is_legacy_h5(path: str | Path) -> bool:
    """True if ``path`` is an HDF5 file in the Keras 2 layout (not a Keras 3 ``.weights.h5``)."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            return _weights_group(handle) is not None
    except OSError:
        return False


def read_legacy_h5(path: str | Path) -> "OrderedDict[str, list[tuple[str, np.ndarray]]]":
    """All weights of a legacy file: layer name -> [(weight name, array), ...], in file order.

    Layers without weights are included with an empty list. Raises ``ra2.Ra2Error`` naming the
    file when it is missing or not in the legacy layout.
    """
    import h5py

    from ra2 import Ra2Error

    path = Path(path)
    if not path.is_file():
        raise Ra2Error(f"{path}: weights file not found")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise Ra2Error(f"{path}: not an HDF5 file ({error})") from None
    with handle:
        group = _weights_group(handle)
        if group is None:
            raise Ra2Error(
                f"{path}: not a Keras 2 / matterport weights file (no 'layer_names' attribute at the "
                "root or under 'model_weights'); Keras 3 '.weights.h5' files load with model.load_weights"
            )
        layers: OrderedDict[str, list[tuple[str, np.ndarray]]] = OrderedDict()
        for layer_name in _decode(group.attrs["layer_names"]):
            if layer_name not in group:
                raise Ra2Error(f"{path}: layer {layer_name!r} is listed in layer_names but has no group")
            layer_group = group[layer_name]
            names = _decode(layer_group.attrs.get("weight_names", []))
            entries = []
            for name in names:
                if name not in layer_group:
                    raise Ra2Error(f"{path}: weight {name!r} of layer {layer_name!r} is missing")
                entries.append((name, np.asarray(layer_group[name])))
            layers[layer_name] = entries
        return layers


# ------------------------------------------------------------------------------ model side
def _sublayers(layer) -> list:
    return list(getattr(layer, "layers", None) or [])


def layers_by_name(model) -> "OrderedDict[str, Any]":
    """Name -> layer for the model's layers; layers of nested models are found too, but a
    top-level layer wins over a nested one of the same name."""
    found: OrderedDict[str, Any] = OrderedDict()
    queue = list(_sublayers(model))
    for layer in queue:
        found.setdefault(layer.name, layer)
    for layer in queue:
        for inner in _walk(layer):
            found.setdefault(inner.name, inner)
    return found


def _walk(layer):
    for inner in _sublayers(layer):
        yield inner
        yield from _walk(inner)


def _variable_key(variable) -> str:
    """'layer/variable' of a Keras 3 variable (the last two parts of its path)."""
    path = getattr(variable, "path", None) or variable.name
    return "/".join(path.split("/")[-2:])


def _file_key(weight_name: str) -> str:
    """'layer/variable' of a legacy weight name like 'rpn_model/rpn_conv_shared/kernel:0'."""
    return "/".join(weight_name.split(":")[0].split("/")[-2:])


def _match_weights(layer, entries: Sequence[tuple[str, np.ndarray]], path: Path) -> list[tuple[Any, np.ndarray, str]]:
    variables = list(layer.weights)
    if len(variables) != len(entries):
        raise ValueError(
            f"{path}: layer '{layer.name}' has {len(variables)} weights in the model but "
            f"{len(entries)} in the file ({', '.join(n for n, _ in entries) or 'none'})"
        )
    file_keys = [_file_key(name) for name, _ in entries]
    model_keys = [_variable_key(v) for v in variables]
    if sorted(file_keys) == sorted(model_keys) and len(set(file_keys)) == len(file_keys):
        by_key = {key: entry for key, entry in zip(file_keys, entries)}
        ordered = [by_key[key] for key in model_keys]
    else:
        ordered = list(entries)
    return [(v, value, name) for v, (name, value) in zip(variables, ordered)]


def _check_shapes(layer_name: str, pairs, path: Path) -> str | None:
    for variable, value, name in pairs:
        if tuple(variable.shape) != tuple(value.shape):
            return (
                f"{path}: shape mismatch in layer '{layer_name}', weight '{name}': the file has "
                f"{tuple(value.shape)} but the model expects {tuple(variable.shape)}"
            )
    return None


def load_legacy_h5(
    model,
    path: str | Path,
    by_name: bool = True,
    exclude: Sequence[str] | None = None,
    skip_mismatch: bool = False,
) -> dict[str, list[str]]:
    """Load a matterport / Keras 2 HDF5 weights file into a Keras 3 model.

    model: a built Keras 3 model (layers of nested models are found by name too).
    by_name: True assigns each file layer to the model layer of the same name and ignores layers
      absent from the model (matterport's ``load_weights(by_name=True)``); False assigns the
      file's layers that have weights, in order, to the model's top-level layers that have weights
      (counts must agree).
    exclude: layer names to leave untouched (e.g. the class-specific heads
      ``["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox", "mrcnn_mask"]``, or ``["conv1"]``
      for grayscale input).
    skip_mismatch: True skips (with a warning) layers whose weight count or shapes differ instead
      of raising.

    Returns ``{"loaded": [...], "excluded": [...], "skipped": [...], "not_in_model": [...],
    "not_in_file": [...]}`` (layer names; "not_in_file" lists model layers with weights that the
    file did not provide).
    Raises ``ValueError`` naming the layer, the weight and both shapes on a mismatch; nothing is
    assigned unless every selected layer fits (unless ``skip_mismatch``).
    """
    path = Path(path)
    exclude_set = set(exclude or [])
    file_layers = read_legacy_h5(path)
    report: dict[str, list[str]] = {"loaded": [], "excluded": [], "skipped": [], "not_in_model": [], "not_in_file": []}

    if by_name:
        model_layers = layers_by_name(model)
        pairs_to_load = []
        for layer_name, entries in file_layers.items():
            if not entries:
                continue
            if layer_name in exclude_set:
                report["excluded"].append(layer_name)
                continue
            layer = model_layers.get(layer_name)
            if layer is None:
                report["not_in_model"].append(layer_name)
                continue
            pairs_to_load.append((layer, entries))
        provided = {name for name, entries in file_layers.items() if entries}
        report["not_in_file"] = [
            name for name, layer in layers_by_name(model).items()
            if layer.weights and not _sublayers(layer) and name not in provided
            and not _inside_provided(layer, provided, model_layers)
        ]
    else:
        model_with_weights = [layer for layer in _sublayers(model) if layer.weights]
        file_with_weights = [(name, entries) for name, entries in file_layers.items() if entries]
        if len(model_with_weights) != len(file_with_weights):
            raise ValueError(
                f"{path}: the file has {len(file_with_weights)} layers with weights but the model has "
                f"{len(model_with_weights)}; load by name instead (by_name=True)"
            )
        pairs_to_load = []
        for layer, (name, entries) in zip(model_with_weights, file_with_weights):
            if layer.name in exclude_set or name in exclude_set:
                report["excluded"].append(layer.name)
                continue
            pairs_to_load.append((layer, entries))

    assignments = []
    for layer, entries in pairs_to_load:
        try:
            pairs = _match_weights(layer, entries, path)
            problem = _check_shapes(layer.name, pairs, path)
        except ValueError as error:
            problem = str(error)
        if problem:
            if skip_mismatch:
                warnings.warn(f"skipping layer '{layer.name}': {problem}", stacklevel=2)
                report["skipped"].append(layer.name)
                continue
            raise ValueError(problem)
        assignments.append((layer, pairs))

    for layer, pairs in assignments:
        for variable, value, _ in pairs:
            variable.assign(value.astype(variable.dtype, copy=False))
        report["loaded"].append(layer.name)
    return report


def _inside_provided(layer, provided: set[str], model_layers) -> bool:
    """True if ``layer`` sits inside a nested model whose weights the file provides as a whole."""
    for name in provided:
        outer = model_layers.get(name)
        if outer is not None and _sublayers(outer) and any(inner is layer for inner in _walk(outer)):
            return True
    return False


# ---------------------------------------------------------------------------------- writing
def _model_entries(model) -> "OrderedDict[str, list[tuple[str, np.ndarray]]]":
    layers: OrderedDict[str, list[tuple[str, np.ndarray]]] = OrderedDict()
    for layer in _sublayers(model):
        entries = []
        if _sublayers(layer):  # nested model: Keras 2 named the weights after the inner layers
            for variable in layer.weights:
                entries.append((f"{_variable_key(variable)}:0", np.asarray(variable.numpy())))
        else:
            for variable in layer.weights:
                entries.append((f"{layer.name}/{variable.name}:0", np.asarray(variable.numpy())))
        layers[layer.name] = entries
    return layers


def _dict_entries(weights: Mapping[str, Any]) -> "OrderedDict[str, list[tuple[str, np.ndarray]]]":
    layers: OrderedDict[str, list[tuple[str, np.ndarray]]] = OrderedDict()
    for layer_name, items in weights.items():
        if isinstance(items, Mapping):
            items = list(items.items())
        items = list(items)
        entries = []
        if items and all(isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) for item in items):
            for name, value in items:
                entries.append((name if "/" in name else f"{layer_name}/{name}", np.asarray(value)))
        else:
            names = DEFAULT_WEIGHT_NAMES.get(len(items), tuple(f"weight_{i}" for i in range(len(items))))
            for name, value in zip(names, items):
                entries.append((f"{layer_name}/{name}", np.asarray(value)))
        layers[layer_name] = [(n if n.endswith(":0") else n + ":0", v) for n, v in entries]
    return layers


def _bytes_array(names: Iterable[str]) -> np.ndarray:
    """Names as Keras 2 stored them: a fixed-length bytes array (an empty float array if none)."""
    encoded = [name.encode("utf8") for name in names]
    return np.array(encoded) if encoded else np.zeros(0)


def write_legacy_h5(model_or_dict, path: str | Path, keras_version: str = "2.2.4") -> None:
    """Write weights in the Keras 2 / matterport HDF5 layout (for tests and for exporting).

    model_or_dict: a Keras 3 model (its top-level layers in order; nested models are written as
      one layer whose weights are named after the inner layers, as Keras 2 did), or a mapping
      layer name -> weights where weights is a list of arrays (named kernel/bias,
      gamma/beta/moving_mean/moving_variance by count), a list of (weight name, array) pairs or
      a mapping weight name -> array. Weight names may be bare ("kernel") or full
      ("conv1/kernel:0").
    """
    import h5py

    if isinstance(model_or_dict, Mapping):
        layers = _dict_entries(model_or_dict)
    else:
        layers = _model_entries(model_or_dict)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = _bytes_array(layers)
        handle.attrs["backend"] = b"tensorflow"
        handle.attrs["keras_version"] = keras_version.encode("utf8")
        for layer_name, entries in layers.items():
            group = handle.create_group(layer_name)
            group.attrs["weight_names"] = _bytes_array(name for name, _ in entries)
            for name, value in entries:
                group.create_dataset(name, data=value)
