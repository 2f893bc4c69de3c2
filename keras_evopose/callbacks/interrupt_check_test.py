import signal

import keras
import numpy as np
import pytest

from keras_evopose.callbacks.interrupt_check import InterruptCheck
from keras_evopose.utils import interrupts


def test_a_recorded_interrupt_stops_fit_at_the_next_batch(monkeypatch):
    previous = signal.getsignal(signal.SIGINT)
    try:
        interrupts.install_interrupt_handler()
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        x, y = np.zeros((8, 2)), np.zeros((8, 1))
        seen = []

        class Count(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                seen.append(batch)

        model.fit(x, y, batch_size=2, verbose=0, callbacks=[InterruptCheck()])
        # A KeyboardInterrupt swallowed where it was raised (as in a
        # garbage-collection callback): only the record is left.
        with pytest.raises(KeyboardInterrupt):
            interrupts._on_interrupt(signal.SIGINT, None)
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
    finally:
        interrupts._REQUESTED.clear()
        signal.signal(signal.SIGINT, previous)
