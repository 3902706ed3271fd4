"""A night's steps as the tests run them without Prefect: the use cases of ``night/`` on a
``Night`` built by the composition root, in the order ``nudgeflow run`` runs them."""

from __future__ import annotations

from datetime import date

from bootstrap.app import App
from night.batch import Checkpoint, no_checkpoint
from night.dispatch import DispatchRun, dispatch_night


def dispatch(app: App, as_of: date, checkpoint: Checkpoint = no_checkpoint) -> DispatchRun:
    """Dispatch the night ``as_of`` in batches, as the nightly flow does (one loop)."""
    night = app.night(as_of)
    dispatcher = app.dispatcher(night, checkpoint)
    return dispatch_night(dispatcher, night.batch_size, checkpoint=checkpoint)
