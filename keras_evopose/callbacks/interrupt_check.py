"""Raises a recorded Ctrl-C at the next batch (see
`keras_evopose.utils.interrupts`); a no-op without one."""

import keras

from keras_evopose.utils.interrupts import interrupt_requested


class InterruptCheck(keras.callbacks.Callback):
    """Stops `fit` with `KeyboardInterrupt` once Ctrl-C was pressed, in
    case the first one was raised where Python drops it."""

    def _check(self, *args, **kwargs):
        if interrupt_requested():
            raise KeyboardInterrupt

    on_train_batch_end = _check
    on_test_batch_end = _check
    on_epoch_end = _check
