"""ResumableTuner: the keras-tuner Tuner side of the one door to
keras-tuner's internals (`resumable_oracle.py` is the Oracle side).

keras-tuner's `Tuner` does its work in private methods (`_try_build`,
`_build_and_fit_model`, `_run_and_update_trial`, ...) and keeps its paths
and helpers private too. This base class is the only place that calls or
overrides them: it gives each a public name (`try_build`,
`checkpoint_path`, ...) that subclasses override or call, so a
keras-tuner release that renames one changes this file alone.
"""

import keras_tuner


class ResumableTuner(keras_tuner.Tuner):
    """A keras-tuner `Tuner` whose internals have public names.

    Subclasses override `try_build`, `build_and_fit_model`,
    `run_and_update_trial` and `populate_initial_space` (by default
    keras-tuner's own) and call `is_worker`, `tuner_state_path`,
    `build_config_path`, `checkpoint_path`, `build_hypermodel`,
    `copy_callbacks`, `configure_tensorboard` and `distribution_scope`.
    """

    # ----------------------------------------------------------------
    # keras-tuner's private members, called under public names.

    def is_worker(self):
        """Whether this process is a worker of a distributed search."""
        return self._is_worker()

    def tuner_state_path(self):
        """This tuner's own state file."""
        return self._get_tuner_fname()

    def build_config_path(self, trial_id):
        """A trial's `build_config.json`."""
        return self._get_build_config_fname(trial_id)

    def checkpoint_path(self, trial_id):
        """A trial's weights file (`checkpoint.weights.h5`)."""
        return self._get_checkpoint_fname(trial_id)

    def build_hypermodel(self, hp):
        """The hypermodel's model for `hp`, in the distribution scope."""
        return self._build_hypermodel(hp)

    def copy_callbacks(self, callbacks):
        """Deep copies of `callbacks` for one execution of a trial."""
        return self._deepcopy_callbacks(callbacks)

    def configure_tensorboard(self, callbacks, trial, execution=0):
        """Points a TensorBoard callback at the trial's log folder.

        keras-tuner imports tensorboard on the TensorFlow backend even
        without a TensorBoard callback, and TensorFlow 2.21 no longer
        installs it: only a TensorBoard callback needs it."""
        if any(c.__class__.__name__ == "TensorBoard" for c in callbacks):
            super()._configure_tensorboard_dir(callbacks, trial, execution)

    def distribution_scope(self):
        """A context in the tuner's `distribution_strategy` (if any)."""
        return keras_tuner.engine.tuner.maybe_distribute(
            self.distribution_strategy
        )

    # ----------------------------------------------------------------
    # keras-tuner's private hooks, overridden under public names.

    def try_build(self, hp):
        return super()._try_build(hp)

    def build_and_fit_model(self, trial, *args, **kwargs):
        return super()._build_and_fit_model(trial, *args, **kwargs)

    def run_and_update_trial(self, trial, *args, **kwargs):
        return super()._run_and_update_trial(trial, *args, **kwargs)

    def populate_initial_space(self):
        return super()._populate_initial_space()

    def _try_build(self, hp):
        return self.try_build(hp)

    def _build_and_fit_model(self, trial, *args, **kwargs):
        return self.build_and_fit_model(trial, *args, **kwargs)

    def _run_and_update_trial(self, trial, *args, **kwargs):
        return self.run_and_update_trial(trial, *args, **kwargs)

    def _populate_initial_space(self):
        return self.populate_initial_space()

    def _configure_tensorboard_dir(self, callbacks, trial, execution=0):
        return self.configure_tensorboard(callbacks, trial, execution)
