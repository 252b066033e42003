"""Run the Rasa SDK action server for the ``actions`` package, warmed before it takes requests.

rasa-sdk's own ``run`` starts Sanic worker processes that would each load the models again on
their first request; here the app from ``rasa_sdk.endpoint.create_app`` runs in one process and
its dependencies (database, knowledge base) are loaded before the port opens.
"""

from __future__ import annotations

import asyncio
import logging

from assistant.settings import Settings

log = logging.getLogger(__name__)


def create_action_app(settings: Settings):
    from rasa_sdk.endpoint import create_app
    from rasa_sdk.executor import ActionExecutor
    from sanic import response

    from actions.fallback import COUNTERS
    from actions.services import Services, set_services

    services = Services(settings)
    set_services(services)
    executor = ActionExecutor()
    executor.register_package("actions")
    app = create_app(executor, cors_origins="*")

    @app.before_server_start
    async def _warm(app_, _loop):
        await asyncio.to_thread(services.warm)
        log.info("action server ready: %d actions", len(executor.list_actions()))

    @app.get("/metrics")
    async def _metrics(_request):
        body = (f"actions_nlu_unavailable_total {COUNTERS.nlu_unavailable}\n"
                f"actions_not_understood_total {COUNTERS.not_understood}\n")
        return response.text(body)

    return app


def serve(settings: Settings) -> None:
    app = create_action_app(settings)
    app.run(host=settings.action_host, port=settings.action_port, single_process=True, access_log=False,
            motd=False)
