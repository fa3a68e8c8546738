"""The recovery console: server-rendered pages where staff work their cases, over the API's use cases."""

from service.adapters.http.console.routes import console_router

__all__ = ["console_router"]
