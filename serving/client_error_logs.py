"""A client's mistake is one WARNING line in the predictor's log, not an ERROR with a traceback.

kserve's exception handlers log every exception they turn into a response with
``logger.error("Exception:", exc_info=exc)``, a 400 for a misspelt field included. In a busy
service that buries real failures under stack traces of bad requests. This filter, on kserve's
logger, rewrites the records for the errors that become 4xx (invalid input, unknown model) into
a one-line warning that says what was refused and why; 5xx records pass unchanged.
"""

from __future__ import annotations

import logging

from kserve.errors import InvalidInput, ModelNotFound
from kserve.logging import KSERVE_LOGGER_NAME

CLIENT_ERRORS = (InvalidInput, ModelNotFound)


class ClientErrorsAsWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, CLIENT_ERRORS):
            record.msg, record.args = "refused a request (%s): %s", (type(exc).__name__, exc)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        return True


def install_client_error_filter() -> None:
    """Add the filter to kserve's logger (once; call after kserve configured its logging)."""
    logger = logging.getLogger(KSERVE_LOGGER_NAME)
    if not any(isinstance(f, ClientErrorsAsWarnings) for f in logger.filters):
        logger.addFilter(ClientErrorsAsWarnings())
