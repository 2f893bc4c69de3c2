import pytest


def test_the_old_name_warns_and_names_the_new_one():
    import keras_evopose.data
    from keras_evopose.data import coco_instances

    for module in (keras_evopose.data, coco_instances):
        with pytest.warns(DeprecationWarning, match="data.COCOInstances"):
            assert module.CocoInstances is keras_evopose.data.COCOInstances
