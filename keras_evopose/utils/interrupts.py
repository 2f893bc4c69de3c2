"""Ctrl-C that is never lost.

Python runs a SIGINT handler between bytecodes, wherever they are; when
that is inside a garbage-collection callback (JAX registers one), the
`KeyboardInterrupt` it raises is printed as "Exception ignored" and
dropped, and a search went on to its end. `install_interrupt_handler`
(the command line calls it) also records the interrupt, and
`keras_evopose.callbacks.interrupt_check.InterruptCheck` raises it again
at the next batch of any `fit`.
"""

import signal
import threading

# Process-wide by nature: a signal reaches the process, not an object.
_REQUESTED = threading.Event()


def _on_interrupt(signum, frame):
    _REQUESTED.set()
    raise KeyboardInterrupt


def install_interrupt_handler():
    """SIGINT raises `KeyboardInterrupt`, as by default, and is recorded.

    Call from the main thread (signal handlers can only be set there).
    """
    _REQUESTED.clear()
    signal.signal(signal.SIGINT, _on_interrupt)


def interrupt_requested():
    """Whether a Ctrl-C reached this process since the handler was set."""
    return _REQUESTED.is_set()
