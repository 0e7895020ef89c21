"""snapmem markers for Python programs measured by ``snapmem profile``.

    import snapmem

    with snapmem.stage("load_gas_fields"):        # or @snapmem.stage("step3") on a function
        u = f["PartType0/InternalEnergy"][:]
        snapmem.track("InternalEnergy", u)         # counted as a named array until u is freed
    snapmem.begin("histogram"); ...; snapmem.end()

Stages nest inside the stage "process" that spans the program; ``instance`` numbers repeated
stages (e.g. a halo's place). Outside ``snapmem profile`` (no preloaded profiler in the process)
every call is a no-op, so a notebook runs unchanged. Standard library and ctypes only: the calls
reach libsnapmem-preload.so through the symbol ``sm_preload_ops`` it exports.

``track(name, obj)`` takes any object with the buffer protocol (a numpy array, bytearray,
memoryview...): its ``nbytes`` are counted as a tracked array of that name in the current stage
until the object is garbage-collected (weakref.finalize; objects without weak references, e.g.
bytearray, stay counted until ``untrack(obj)``).
"""
import ctypes
import functools
import weakref

__all__ = ["stage", "begin", "end", "track", "untrack", "active"]


# PYFUNCTYPE: the calls keep the GIL (they are short), so that with --python-lines the profiler
# can read the calling script's frames for a tracked array's site.
class _Ops(ctypes.Structure):
    _fields_ = [
        ("version", ctypes.c_int),
        ("stage_begin", ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_int64)),
        ("stage_end", ctypes.PYFUNCTYPE(ctypes.c_int)),
        ("alloc", ctypes.c_void_p),
        ("release", ctypes.c_void_p),
        ("track", ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_uint64)),
        ("untrack", ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_void_p)),
    ]


def _find_ops():
    try:
        fn = ctypes.CDLL(None).sm_preload_ops
    except (AttributeError, OSError):
        return None
    fn.restype = ctypes.POINTER(_Ops)
    fn.argtypes = []
    ops = fn()
    if not ops or ops.contents.version != 1:
        return None
    return ops.contents


_ops = _find_ops()
_tracked = {}   # id(obj) -> finalizer or None


def _find_python_hook():
    """sm_preload_python: under --python-lines, Python's own allocators counted per stage."""
    if _ops is None:
        return None
    try:
        fn = ctypes.CDLL(None).sm_preload_python
    except (AttributeError, OSError):
        return None
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p]
    return fn


def _numpy_api():
    """numpy's C-API table (its _ARRAY_API capsule's pointer) once numpy is imported and has
    data memory handlers (numpy >= 1.22), else None"""
    import sys
    for name in ("numpy.core._multiarray_umath", "numpy._core._multiarray_umath"):
        mod = sys.modules.get(name)
        if mod is not None and hasattr(mod, "get_handler_name"):
            get = ctypes.pythonapi.PyCapsule_GetPointer
            get.restype = ctypes.c_void_p
            get.argtypes = [ctypes.py_object, ctypes.c_char_p]
            try:
                return get(mod._ARRAY_API, None)
            except (AttributeError, ValueError):
                return None
    return None


# PYFUNCTYPE-like: called with the GIL held (CDLL calls release it; the hook must not): pythonapi
_python_hook = _find_python_hook()
if _python_hook is not None:
    _python_hook = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_void_p)(
        ctypes.cast(_python_hook, ctypes.c_void_p).value)
_python_state = 0   # 1: Python's allocator domains counted, | 2: numpy's data too


def _python_start():
    global _python_state
    if _python_hook is None or _python_state & 2:
        return
    _python_state = _python_hook(_numpy_api())


_python_start()


def active():
    """True when a preloaded profiler measures this process."""
    return _ops is not None


def _name(name):
    if not isinstance(name, str) or not name:
        raise TypeError("snapmem: a stage or array name must be a non-empty str")
    return name.encode("utf-8")


def begin(name, instance=None):
    """Begins stage ``name`` (nested in the current one)."""
    n = _name(name)
    if _ops is not None:
        _python_start()
        _ops.stage_begin(n, -1 if instance is None else int(instance))


def end():
    """Ends the innermost stage begun with begin() or stage()."""
    if _ops is not None:
        _ops.stage_end()


class stage:
    """A stage, as a context manager (``with stage("load"):``) or a decorator (``@stage("load")``)."""

    def __init__(self, name, instance=None):
        self._n = _name(name)
        self._instance = -1 if instance is None else int(instance)

    def __enter__(self):
        if _ops is not None:
            _python_start()
            _ops.stage_begin(self._n, self._instance)
        return self

    def __exit__(self, *exc):
        if _ops is not None:
            _ops.stage_end()
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with stage(self._n.decode("utf-8"), None if self._instance == -1 else self._instance):
                return fn(*args, **kwargs)
        return wrapper


def _untrack_key(key):
    _tracked.pop(key, None)
    if _ops is not None:
        _ops.untrack(ctypes.c_void_p(key))


def _key(obj):
    """The buffer's address when it can be read (numpy's __array_interface__, a writable buffer),
    so that the profiler stops counting that block as an untracked sample; else id(obj)."""
    try:
        return int(obj.__array_interface__["data"][0]) or id(obj)
    except (AttributeError, KeyError, TypeError, IndexError):
        pass
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(obj)) or id(obj)
    except (TypeError, ValueError):
        return id(obj)


def track(name, obj):
    """Counts obj's buffer (nbytes) as the tracked array ``name`` until obj is freed; returns obj."""
    n = _name(name)
    nbytes = memoryview(obj).nbytes   # TypeError for objects without the buffer protocol
    if _ops is None:
        return obj
    key = _key(obj)
    if key in _tracked:
        return obj
    if _ops.track(n, ctypes.c_void_p(key), nbytes) != 0:
        return obj
    try:
        _tracked[key] = weakref.finalize(obj, _untrack_key, key)
    except TypeError:
        _tracked[key] = None   # no weak references: until untrack(obj)
    return obj


def untrack(obj):
    """Stops counting obj (tracked with track()) now."""
    key = _key(obj)
    fin = _tracked.get(key)
    if fin is not None:
        fin()
    elif key in _tracked:
        _untrack_key(key)
