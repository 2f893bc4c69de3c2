"""What a search shows while it runs: progress bars or one line per trial.

`SearchProgress` is given to `EvolutionTuner(trial_callbacks=[...])`,
which calls its `on_trial_end(tuner, trial)` after each trial's state is
written; `epoch_callback()` is the Keras callback of each trial's fit.
"""

import sys

import keras


class _EpochProgress(keras.callbacks.Callback):
    """One progress bar per trial, over its epochs. It holds no bar
    between trials: keras-tuner deep-copies callbacks for every trial."""

    def __init__(self, enabled):
        super().__init__()
        self.enabled = enabled

    def on_train_begin(self, logs=None):
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=self.params.get("epochs"),
            desc="  trial",
            unit="epoch",
            leave=False,
            disable=not self.enabled,
        )

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.bar.set_postfix(
            {
                key: f"{logs[key]:.4g}"
                for key in ("loss", "val_loss")
                if key in logs
            }
        )
        self.bar.update(1)

    def on_train_end(self, logs=None):
        self.bar.close()


class SearchProgress:
    """A bar over the trials and one per trial's epochs on a terminal;
    where no bar is drawn (a log file), one line per ended trial.

    Use as a context manager around the search: the trial bar is open
    inside it.

    Args:
        max_trials: the search's trials in total.
        done: trials already ended (a resumed search).
        verbose: 0 silent; 1 bars, or a line per trial where no bar is
            drawn, and a line per failed trial; 2 a line per trial also
            beside the bars.
        bars: whether bars may be drawn (one process; they are drawn only
            when stderr is a terminal: redrawn into a file they leave
            debris).
    """

    def __init__(self, max_trials, done=0, verbose=1, bars=True):
        self.max_trials = max_trials
        self.done = done
        self.verbose = verbose
        self.bars = bool(verbose) and bars and sys.stderr.isatty()
        self.progress = None

    def __enter__(self):
        from tqdm.auto import tqdm

        self.progress = tqdm(
            total=self.max_trials,
            initial=self.done,
            desc="search",
            unit="trial",
            disable=not self.bars,
        )
        return self

    def __exit__(self, *exc_info):
        self.progress.close()
        self.progress = None

    def epoch_callback(self):
        """The Keras callback drawing each trial's epochs."""
        return _EpochProgress(self.bars)

    def on_trial_end(self, tuner, trial):
        ended = tuner.oracle.get_trial(trial.trial_id)
        if ended.status == "FAILED" and self.verbose:
            lines = (ended.message or trial.message or "").strip()
            reason = lines.splitlines()[-1] if lines else "no message"
            # "keras_tuner.src.errors.FailedTrialError: why" -> "why".
            reason = reason.split("FailedTrialError: ", 1)[-1]
            print(
                f"trial {trial.trial_id} failed: {reason} (traceback "
                f"in {tuner.get_trial_dir(trial.trial_id)}/trial.json)",
                flush=True,
            )
        elif ended.status == "COMPLETED" and (
            self.verbose >= 2 or (self.verbose and not self.bars)
        ):
            from keras_evopose.search.results import describe_trial

            # One line per trial where no bar is drawn (a log file).
            line = describe_trial(tuner.oracle, ended, tuner.last_timing)
            if self.progress is not None and self.bars:
                self.progress.write(line)
            else:
                print(line, flush=True)
        if self.progress is not None:
            self.progress.set_postfix_str(
                f"trial {trial.trial_id} {ended.status.lower()}"
            )
            self.progress.update(1)
