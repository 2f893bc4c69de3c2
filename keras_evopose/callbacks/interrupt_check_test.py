import gc
import signal
import sys

import keras
import numpy as np
import pytest

from keras_evopose.callbacks.interrupt_check import InterruptCheck
from keras_evopose.utils import interrupts


@pytest.fixture
def ctrl_c_not_ignored():
    # A suite started in the background (`pytest &`) inherits Ctrl-C
    # ignored, and `recorded_interrupts` then leaves it so.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_dropped_interrupt_stops_fit_at_the_next_batch(
    capsys, ctrl_c_not_ignored
):
    before = signal.getsignal(signal.SIGINT), sys.unraisablehook
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((8, 2)), np.zeros((8, 1))
    seen = []

    class Count(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(batch)

    def interrupt_in_gc(phase, info):
        if phase == "start":
            signal.raise_signal(signal.SIGINT)

    with interrupts.recorded_interrupts():
        model.fit(x, y, batch_size=2, verbose=0, callbacks=[InterruptCheck()])
        # Ctrl-C while a garbage-collection callback runs: Python drops
        # the KeyboardInterrupt there; only the record is left.
        gc.callbacks.append(interrupt_in_gc)
        try:
            gc.collect()
        finally:
            gc.callbacks.remove(interrupt_in_gc)
        assert interrupts.interrupt_requested()
        with pytest.raises(KeyboardInterrupt):
            model.fit(
                x,
                y,
                batch_size=2,
                verbose=0,
                callbacks=[Count(), InterruptCheck()],
            )
    assert seen == [0]
    # Not printed as "Exception ignored ... Traceback".
    assert "Traceback" not in capsys.readouterr().err
    assert (signal.getsignal(signal.SIGINT), sys.unraisablehook) == before
    assert not interrupts.interrupt_requested()
