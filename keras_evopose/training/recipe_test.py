import numpy as np
import pytest

from keras_evopose.training import evopose2d_optimizer
from keras_evopose.training import evopose2d_regularizer
from keras_evopose.training import learning_rate_schedule


def test_schedule_warmup_peak_and_cosine():
    schedule = learning_rate_schedule(
        batch_size=256, steps_per_epoch=10, epochs=20, warmup_epochs=5
    )
    rates = [float(schedule(step)) for step in (0, 25, 50, 125, 200)]
    np.testing.assert_allclose(rates[0], 2.5e-4)
    np.testing.assert_allclose(rates[1], (2.5e-4 + 2e-3) / 2, rtol=1e-5)
    np.testing.assert_allclose(rates[2], 2e-3, rtol=1e-6)
    np.testing.assert_allclose(rates[3], 1e-3, rtol=1e-5)
    np.testing.assert_allclose(rates[4], 0.0, atol=1e-9)


def test_optimizer_is_adam_on_the_schedule():
    optimizer = evopose2d_optimizer(32, 10, epochs=2, warmup_epochs=0)
    assert optimizer.__class__.__name__ == "Adam"
    np.testing.assert_allclose(float(optimizer.learning_rate), 2.5e-4)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="warmup_epochs"):
        learning_rate_schedule(32, 10, epochs=5, warmup_epochs=5)
    with pytest.raises(ValueError, match="batch_size"):
        learning_rate_schedule(0, 10)


def test_regularizer_is_the_reference_l2():
    regularizer = evopose2d_regularizer()
    assert regularizer.__class__.__name__ == "L2"
    np.testing.assert_allclose(regularizer.l2, 1e-5)
    # Keras l2: weight_decay * sum(w ** 2), no 1/2.
    np.testing.assert_allclose(
        float(regularizer(np.full((2, 3), 2.0, "float32"))), 1e-5 * 24
    )
    assert evopose2d_regularizer(0) is None
    with pytest.raises(ValueError, match="weight_decay"):
        evopose2d_regularizer(-1e-5)
