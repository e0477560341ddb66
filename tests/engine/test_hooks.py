"""Hook helpers that need no Runner."""
from r2o_mm.engine.hooks import recipe_differences


def test_recipe_differences_name_each_changed_value():
    run = dict(global_batch=256, world_size=8, epochs=300)
    assert recipe_differences(dict(global_batch=4096, world_size=128, epochs=300), run) == [
        'global_batch 256 (released 4096)', 'world_size 8 (released 128)']
    assert recipe_differences(dict(global_batch=256, world_size=8, epochs=None), run) == []
    assert recipe_differences(None, run) == []
