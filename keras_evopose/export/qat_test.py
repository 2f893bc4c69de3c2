import os
import sys

import keras
import numpy as np
import pytest

from keras_evopose import export
from keras_evopose.models import EvoPose2D
from keras_evopose.models import build_flat_model


def test_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_model_optimization", None)
    with pytest.raises(ImportError, match=r"keras-evopose\[qat\]"):
        export.quantize_aware(EvoPose2D.from_preset("test"))


@pytest.mark.slow
def test_qat_round_trip_to_a_full_integer_file(tmp_path):
    tf_keras = pytest.importorskip("tf_keras")
    pytest.importorskip("tensorflow_model_optimization")
    legacy_keras_flag = os.environ.get("TF_USE_LEGACY_KERAS")
    model = EvoPose2D.from_preset("test")
    rng = np.random.default_rng(0)
    images = rng.normal(size=(16, 64, 48, 3)).astype("float32")

    # Before quantization the tf_keras twin is the Keras 3 model.
    twin = build_flat_model(model, tf_keras)
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    np.testing.assert_allclose(
        np.asarray(twin(images, training=False)), expected, atol=1e-5, rtol=0
    )

    qat_model = export.quantize_aware(model)
    # Importing TFMOT set the flag; quantize_aware put it back.
    assert os.environ.get("TF_USE_LEGACY_KERAS") == legacy_keras_flag
    wrapped = {type(layer).__name__ for layer in qat_model.layers}
    assert "QuantizeWrapperV2" in wrapped
    excite = qat_model.get_layer("quant_stage2_block1_se_excite")
    assert type(excite.quantize_config).__name__ == "MultiplyQuantizeConfig"

    # An untrained QAT model outputs zeros (its output range starts at
    # +-6): fit a few steps towards heatmap-sized targets first.
    targets = rng.uniform(0.0, 20.0, size=(16, 32, 24, 17)).astype("float32")
    qat_model.compile(optimizer=tf_keras.optimizers.Adam(1e-2), loss="mse")
    history = qat_model.fit(images, targets, batch_size=4, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()

    path = export.export_qat_litert(
        qat_model, tmp_path / "qat_int8.tflite", representative_data=images
    )
    dtypes = export.tensor_dtypes(path)
    assert set(dtypes) == {"int8", "int32"}, dtypes
    litert_model = export.LiteRTModel(path)
    actual = litert_model.predict(images[:4])
    reference = np.asarray(qat_model(images[:4], training=False))
    assert np.abs(reference).max() > 0
    output_scale = litert_model.output_detail["quantization"][0]
    # BN is not folded during QAT, so the file differs by a few steps.
    assert np.abs(actual - reference).max() <= 4 * output_scale
