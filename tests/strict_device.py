"""A CPU stand-in for CuPy, strict where CuPy is, for the heads' device code.

The heads' mathematics (layers/crf.py, losses.py, decoding.py) is written
against `ops.xp`: NumPy on the CPU, CuPy on a GPU. On the CPU every test runs
it on NumPy, where nothing tells device arrays from host ones. Here device
arrays are `DeviceArray`s (an ndarray subclass) and `ops.xp` is `DEVICE_XP`, a
proxy of the numpy module that takes and returns them, and:

- a top-level NumPy function given a device array (`np.asarray(x)`,
  `np.concatenate([x])`, `np.exp(x)` called through the modules' `np`) raises
  TypeError, as CuPy's implicit conversion does;
- an arithmetic operation mixing a device array with a host array, an `xp`
  function given a host array (other than xp.asarray/array, which copy it
  over, and xp.split's indices), and a host array assigned into a device
  array, raise TypeError, as CuPy does;
- a full reduction or an integer index gives a 0-d device array (CuPy's), not
  a host scalar, and turning a device array into a Python value (float(),
  int(), bool(), .item(), .tolist(), an index) is recorded in `SYNCS`: on a
  GPU each waits for the device. So are the xp functions whose output size depends on the data (nonzero,
  unique, ..., boolean-mask indexing), which CuPy reads back to size it;
- `DeviceOps.to_numpy`, `.get()` and `DeviceOps.unflatten` with device
  lengths (which thinc's CupyOps copies to the host) are recorded in
  `TRANSFERS`.

`strict_device(monkeypatch)` points the heads' modules at it for one test.
"""

import traceback
import types
from typing import Any, List, Tuple

import numpy as np
from thinc.api import Ops
from thinc.backends import get_array_ops
from thinc.util import get_array_module

# (what, where) of each host synchronisation and device-to-host copy.
SYNCS: List[Tuple[str, str]] = []
TRANSFERS: List[Tuple[str, str]] = []


def _caller() -> str:
    """file:line of the code that did it: the innermost frame outside this file and numpy."""
    for frame in reversed(traceback.extract_stack()):
        if frame.filename != __file__ and "/numpy/" not in frame.filename:
            return f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}"
    return "?"


def _to_host(value: Any) -> Any:
    """Device arrays as plain ndarrays (views), in nested tuples and lists too."""
    if isinstance(value, DeviceArray):
        return value.view(np.ndarray)
    if isinstance(value, (list, tuple)):
        return type(value)(_to_host(v) for v in value)
    return value


def _to_device(value: Any) -> Any:
    """Plain ndarrays and NumPy scalars as device arrays (0-d for scalars)."""
    if isinstance(value, DeviceArray):
        return value
    if isinstance(value, np.ndarray):
        return value.view(DeviceArray)
    if isinstance(value, np.generic):
        return np.asarray(value).view(DeviceArray)
    if isinstance(value, tuple):
        return tuple(_to_device(v) for v in value)
    if isinstance(value, list):
        return [_to_device(v) for v in value]
    return value


def _has(value: Any, kind: type, exclude: type = type(None)) -> bool:
    if isinstance(value, kind) and not isinstance(value, exclude):
        return True
    if isinstance(value, (list, tuple)):
        return any(_has(v, kind, exclude) for v in value)
    if isinstance(value, dict):
        return any(_has(v, kind, exclude) for v in value.values())
    return False


class DeviceArray(np.ndarray):
    """An array "on the device": see the module docstring."""

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(f"numpy.{func.__name__} called on a device array (CuPy: implicit conversion refused)")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.get("out", ())
        if _has(inputs + tuple(out), np.ndarray, exclude=DeviceArray):
            raise TypeError(f"{ufunc.__name__}: a host array mixed with device arrays (CuPy: unsupported type)")
        if out:
            kwargs["out"] = _to_host(out)
        result = getattr(ufunc, method)(*_to_host(inputs), **kwargs)
        if out:
            return out[0] if len(out) == 1 else out
        return _to_device(result)

    def __getitem__(self, index):
        if _has(index, DeviceArray) and any(
            isinstance(i, DeviceArray) and i.dtype == bool for i in (index if isinstance(index, tuple) else (index,))
        ):
            self._sync("boolean mask index")  # CuPy counts the mask's True entries on the host
        return _to_device(super().__getitem__(_to_host(index)))

    def __setitem__(self, index, value):
        if isinstance(value, np.ndarray) and not isinstance(value, DeviceArray) and value.ndim:
            # CuPy refuses it with basic indexing (fill) and copies it over with advanced.
            raise TypeError("a host array assigned into a device array")
        super().__setitem__(_to_host(index), _to_host(value))

    def __repr__(self) -> str:
        return f"DeviceArray({self.view(np.ndarray)!r})"

    __str__ = __repr__

    def _sync(self, what: str) -> None:
        SYNCS.append((what, _caller()))

    def __float__(self):
        self._sync("float()")
        return float(self.view(np.ndarray))

    def __int__(self):
        self._sync("int()")
        return int(self.view(np.ndarray))

    def __index__(self):
        self._sync("index")
        return self.view(np.ndarray).__index__()

    def __bool__(self):
        self._sync("bool()")
        return bool(self.view(np.ndarray))

    def item(self, *args):
        self._sync(".item()")
        return self.view(np.ndarray).item(*args)

    def tolist(self):
        self._sync(".tolist()")
        return self.view(np.ndarray).tolist()

    def __iter__(self):
        self._sync("iteration")
        return iter([_to_device(x) for x in self.view(np.ndarray)])

    def get(self):
        """cupy.ndarray.get(): a copy to the host."""
        TRANSFERS.append((".get()", _caller()))
        return np.array(self.view(np.ndarray))

    def nonzero(self):
        self._sync(".nonzero()")
        return _to_device(self.view(np.ndarray).nonzero())

    def argmax(self, *args, **kwargs):
        return _to_device(self.view(np.ndarray).argmax(*args, **kwargs))

    def argmin(self, *args, **kwargs):
        return _to_device(self.view(np.ndarray).argmin(*args, **kwargs))


# xp functions that accept host data: copies to the device, and cupy.split's
# indices (thinc's CupyOps.unflatten gives it host ones).
_COPIES_HOST = {"asarray", "array", "asanyarray", "ascontiguousarray"}
_TAKES_HOST = _COPIES_HOST | {"split", "array_split"}
# xp functions whose output size depends on the data: CuPy reads it on the host.
_SYNCING = {"nonzero", "flatnonzero", "argwhere", "unique", "compress", "extract", "bincount"}


class _DeviceXP(types.ModuleType):
    """`ops.xp` on the stand-in device: numpy's functions on device arrays."""

    ndarray = DeviceArray

    def __getattr__(self, name: str) -> Any:
        attr = getattr(np, name)
        if isinstance(attr, type) or not callable(attr):
            return attr  # dtypes, constants, finfo's class ...

        def call(*args, **kwargs):
            if name not in _TAKES_HOST and _has((args, kwargs), np.ndarray, exclude=DeviceArray):
                raise TypeError(f"xp.{name} given a host array (CuPy: unsupported type)")
            if name in _SYNCING or (name == "where" and len(args) + len(kwargs) == 1):
                SYNCS.append((f"xp.{name}", _caller()))
            result = attr(*_to_host(args), **{k: _to_host(v) for k, v in kwargs.items()})
            if name in _COPIES_HOST and not isinstance(args[0], DeviceArray):
                result = np.array(result)  # a copy, as on a GPU
            return _to_device(result)

        return call


DEVICE_XP = _DeviceXP("device_xp")


class _HostNumpy(types.ModuleType):
    """The numpy module as the heads' modules see it: refuses device arrays."""

    def __getattr__(self, name: str) -> Any:
        attr = getattr(np, name)
        if isinstance(attr, type) or not callable(attr):
            return attr

        def call(*args, **kwargs):
            if _has((args, kwargs), DeviceArray):
                raise TypeError(f"numpy.{name} given a device array at {_caller()} (CuPy: implicit conversion refused)")
            return attr(*args, **kwargs)

        return call


HOST_NUMPY = _HostNumpy("host_numpy")


class DeviceOps(Ops):
    """thinc Ops on the stand-in device (what CupyOps is on a GPU)."""

    name = "strict_device"
    xp = DEVICE_XP

    def to_numpy(self, data, *, byte_order=None):
        if isinstance(data, DeviceArray):
            TRANSFERS.append(("to_numpy", _caller()))
            return np.array(data.view(np.ndarray))
        return data

    def flatten(self, X, dtype=None, pad: int = 0, ndim_if_empty: int = 2):
        X = [x for x in X if x.size != 0]
        if pad or not X:
            raise NotImplementedError("not needed by the heads")
        result = self.xp.concatenate(X)
        return result if dtype is None else result.astype(dtype)

    def unflatten(self, X, lengths, pad: int = 0):
        if isinstance(lengths, DeviceArray):
            # CupyOps.unflatten: thinc's to_numpy(lengths), a copy to the host.
            TRANSFERS.append(("unflatten(device lengths)", _caller()))
            lengths = lengths.view(np.ndarray)
        return super().unflatten(X, lengths, pad=pad)


def device_array_module(array):
    return DEVICE_XP if isinstance(array, DeviceArray) else get_array_module(array)


def strict_device(monkeypatch) -> DeviceOps:
    """Point the heads' modules at the stand-in device for one test; its DeviceOps."""
    from spacy_bioner import decoding, losses
    from spacy_bioner.layers import crf

    del SYNCS[:], TRANSFERS[:]
    for module in (crf, losses, decoding):
        monkeypatch.setattr(module, "np", HOST_NUMPY)
    # On a GPU these give cupy / CupyOps for a device array.
    # crf._parallel's `xp is not np` then holds for DEVICE_XP as for cupy.
    monkeypatch.setattr(crf, "get_array_module", device_array_module)
    ops = DeviceOps()
    for module in (losses, crf):
        monkeypatch.setattr(
            module, "get_array_ops", lambda array: ops if isinstance(array, DeviceArray) else get_array_ops(array)
        )
    return ops


def _copied(value: Any) -> Any:
    """Plain copies of arrays (also in lists and tuples)."""
    if isinstance(value, np.ndarray):
        return np.array(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_copied(v) for v in value)
    return value


def to_device(value: Any) -> Any:
    """Host arrays (also in lists and tuples) copied to the stand-in device."""
    return _to_device(_copied(value))


def on_host(value: Any) -> Any:
    """Device arrays as plain host copies (for comparing results; not recorded)."""
    return _copied(_to_host(value))


__all__ = [
    "DEVICE_XP", "HOST_NUMPY", "DeviceArray", "DeviceOps", "SYNCS", "TRANSFERS", "on_host", "strict_device", "to_device"
]
