"""User-facing errors: one clear line naming the file, line or key, what was wrong and the fix."""


class TunegateError(Exception):
    """A problem with the user's input or workspace; printed as one line, without a traceback."""


class TrainingDiverged(TunegateError):
    """Training produced a non-finite loss; the adapter is discarded."""
