"""Read models: what status, stage show, eval and the lifecycle report show, as typed
results that the CLI renders."""
