"""Ctrl-C that is never lost.

Python runs a SIGINT handler between bytecodes, wherever they are; when
that is inside a garbage-collection callback (JAX registers one), the
`KeyboardInterrupt` it raises is printed as "Exception ignored ...
Traceback" and dropped, and a search went on to its end. Inside
`recorded_interrupts()` (the command line runs every command in it) the
interrupt is also recorded, such a dropped one is not printed, and
`keras_evopose.callbacks.interrupt_check.InterruptCheck` raises it again
at the next batch of any `fit`.
"""

import contextlib
import signal
import sys
import threading

# Process-wide by nature: a signal reaches the process, not an object.
_REQUESTED = threading.Event()


def _on_interrupt(signum, frame):
    _REQUESTED.set()
    raise KeyboardInterrupt


def interrupt_requested():
    """Whether a Ctrl-C reached this process inside `recorded_interrupts`."""
    return _REQUESTED.is_set()


@contextlib.contextmanager
def recorded_interrupts():
    """Ctrl-C raises `KeyboardInterrupt`, as by default, and is recorded.

    The caller's SIGINT handler and `sys.unraisablehook` are put back on
    exit. A no-op outside the main thread (only it can set handlers) and
    where Ctrl-C is ignored (`nohup`, `cmd &`).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous == signal.SIG_IGN:
        yield
        return
    previous_hook = sys.unraisablehook

    def hook(unraisable):
        # Dropped where it was raised; `InterruptCheck` raises it again.
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            previous_hook(unraisable)

    _REQUESTED.clear()
    signal.signal(signal.SIGINT, _on_interrupt)
    sys.unraisablehook = hook
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = previous_hook
        _REQUESTED.clear()
