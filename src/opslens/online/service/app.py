"""The HTTP scoring service: ``create_app(settings)`` serves every analysis of a project.

Routes (all but ``/health`` need ``Authorization: Bearer <token>`` when the
variable ``settings.token_env`` holds a token):

* ``GET /health`` — liveness, and how many analyses have a model loaded.
* ``GET /models`` — per analysis: recipe, version, alias, run id, origin, inputs (or why none is loaded).
* ``GET /metrics`` — Prometheus text: requests, latency, errors, the version per analysis.
* ``GET /docs``, ``/redoc``, ``/openapi.json`` — the API's documentation (behind the token too).
* ``POST /predict/{analysis}`` — one instance (the body is the instance) or a batch
  (``{"instances": [...]}``, at most ``settings.max_batch``), answered through the
  predictor protocol; each answer names the version that made it. Stateful
  predictors (``supports("step")``) need ``stream_id``; their state per stream
  lives in the state store, one request per stream at a time.
* ``GET /recent/{analysis}?n=500&stream=ID`` — the newest answered instances of
  ``/predict/{analysis}`` (each instance with its answer, the version and when; at most
  10,000 kept per analysis in this process, a list or object field as its size): what a
  live view watches (:mod:`.recent`).
* ``POST /events/{analysis}`` — live events for a model that takes them (propensity):
  one event or ``{"events": [...]}``; each refused event is named with its reason, the
  others are kept (:mod:`.events`).
* ``POST /score/{analysis}`` — ``{"user": ..., "items": [...], "at": ...}``: the items
  ranked by purchase probability from the online feature state, warm-started from the
  analysis's events when first asked.

Answers: 401 wrong or missing token, 404 unknown analysis (naming the known
ones), 413 a body over ``settings.max_body_bytes`` (checked from ``Content-Length`` and
while it streams in, before parsing) or an oversized batch, 422 a bad payload
(``detail[].loc`` names the field; a non-finite number or nesting deeper than 32 levels
too; the input is echoed as a short excerpt at most), 409 an analysis with no version under the served alias (``champion``) yet, 503 an
analysis whose model could not be loaded yet (or a state store that went away). The model book is
refreshed every ``settings.poll_seconds`` in a worker thread, so a version
promoted while the service runs is served without a restart. Predictions run in a
thread pool (one thread per core), so a slow model never stalls ``/health``; a model whose
single answers take under 1 ms of CPU on a running average answers on the event loop
instead (no thread hop), until a slow answer lifts its average (:class:`~.served.Pace`). A
``POST /predict`` of a served analysis with the right token is answered by a pure-ASGI fast path in front of
FastAPI (:class:`~.predict.FastPredict`: the same answers, bytes for bytes, without
FastAPI's routing and dependencies); every other request goes through FastAPI.

Example:
    >>> import asyncio, httpx
    >>> from opslens.core.predictor import BasePredictor
    >>> from opslens.online.service.served import Release
    >>> class Double(BasePredictor):
    ...     recipe = "double"
    ...     def input_schema(self): return {"x": "number"}
    ...     def predict_frame(self, frame): return frame
    ...     def predict_one(self, instance): return {"y": 2 * instance["x"]}
    >>> class One:
    ...     alias = "champion"
    ...     def analyses(self): return {"dbl": "double"}
    ...     def pointer(self, analysis): return "7"
    ...     def load(self, analysis, pointer): return Release(Double(), pointer, "r1", "memory")
    >>> app = create_app(ServiceSettings(), source=One())
    >>> async def post(path, body):
    ...     transport = httpx.ASGITransport(app=app)
    ...     async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
    ...         return (await client.post(path, json=body)).json()
    >>> asyncio.run(post("/predict/dbl", {"x": 2}))
    {'analysis': 'dbl', 'recipe': 'double', 'version': '7', 'alias': 'champion', 'run_id': 'r1', 'answer': {'y': 4}}
    >>> asyncio.run(post("/predict/nope", {}))["known"]
    ['dbl']
"""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema
from starlette.concurrency import run_in_threadpool

from opslens import __version__
from opslens.errors import OpslensError, SourceError
from opslens.online.service.body import BodyError
from opslens.online.service.events import EventStates, ingest_body, project_states, score_body
from opslens.online.service.metrics import CONTENT_TYPE, ServiceMetrics
from opslens.online.service.predict import FastPredict, Predictions, invalid, refused, trimmed
from opslens.online.service.recent import MAX_RECENT, RecentAnswers
from opslens.online.service.served import ModelBook, ModelSource, ProjectModels
from opslens.online.service.settings import ServiceSettings
from opslens.online.service.state import StateStore, dumpb, open_state

__all__ = ["create_app"]

log = logging.getLogger("opslens.serve")

_BEARER = HTTPBearer(auto_error=False, description="the token in the service's token variable")


def _json(content: Any, status: int = 200) -> Response:
    return Response(dumpb(content), status_code=status, media_type="application/json")


def _guard(settings: ServiceSettings) -> list[Any]:
    token = settings.token()
    if token is None:
        return []

    async def bearer(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    ) -> None:
        sent = credentials.credentials if credentials is not None else ""
        if not secrets.compare_digest(sent.encode(), token.encode()):
            raise HTTPException(
                401,
                detail=f"missing or wrong bearer token; fix: send 'Authorization: Bearer <token>' "
                f"with the token the service reads from ${settings.token_env}",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return [Depends(bearer)]


def _freeze(swapped: bool = False) -> None:
    """Move every live object out of the garbage collector's generations (``gc.freeze``):
    the loaded models (often millions of objects: trees, tables) live as long as the service,
    and its full collections under load would walk them all again each time. After a swap the
    old frozen objects are unfrozen and collected first, so a replaced version's cycles are
    freed, not kept frozen forever."""
    if swapped:
        gc.unfreeze()
    gc.collect()
    gc.freeze()


async def _poll(book: ModelBook, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            if await asyncio.to_thread(book.refresh):
                await asyncio.to_thread(_freeze, True)
        except Exception:  # the poller must outlive a registry hiccup
            log.exception("refreshing the models failed; serving the loaded versions")


#: what every typed route may answer besides 200
_REFUSALS = {
    409: "the analysis has no version under the served alias yet",
    413: "the body is larger than the service takes",
    422: "a field is missing or has the wrong type (detail[].loc names it)",
    503: "the analysis's model could not be loaded yet, or the state store went away",
}


class EventsAnswer(BaseModel):
    """What ``POST /events`` answers (besides the stamp)."""

    model_config = ConfigDict(extra="allow")
    accepted: int = Field(description="events kept")
    refused: list[dict[str, Any]] = Field(description="each refused event's index and reason")
    events_in_state: int = Field(description="events in the online state now")


class ScoreAnswer(BaseModel):
    """What ``POST /score`` answers (besides the stamp): the items ranked, with drivers."""

    model_config = ConfigDict(extra="allow")


def _openapi(app: FastAPI, book: ModelBook, secured: bool) -> Callable[[], dict[str, Any]]:
    """The OpenAPI document with one typed ``/predict/<analysis>`` per served analysis."""

    def build() -> dict[str, Any]:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        models = book.schemas()
        if models:
            _, defs = models_json_schema(
                [(m, "validation") for m in models.values()],
                ref_template="#/components/schemas/{model}",
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(defs["$defs"])

        def ref(model: type[BaseModel]) -> dict[str, str]:
            return {"$ref": f"#/components/schemas/{model.__name__}"}

        def body(*models: type[BaseModel]) -> dict[str, Any]:
            one = [ref(m) for m in models]
            schema = one[0] if len(one) == 1 else {"oneOf": one}
            return {"required": True, "content": {"application/json": {"schema": schema}}}

        def answers(ok: str, *models: type[BaseModel], extra: dict[int, str]) -> dict[str, Any]:
            out: dict[str, Any] = {
                "200": {
                    "description": ok,
                    "content": {
                        "application/json": {
                            "schema": ref(models[0])
                            if len(models) == 1
                            else {"oneOf": [ref(m) for m in models]}
                        }
                    },
                }
            }
            for status, said in {**_REFUSALS, **extra}.items():
                out[str(status)] = {"description": said}
            if secured:
                out["401"] = {"description": "missing or wrong bearer token"}
            return out

        def add(path: str, operation: dict[str, Any]) -> None:
            if secured:
                operation["security"] = [{"HTTPBearer": []}]
            schema["paths"][path] = {"post": operation}

        for analysis in book.recipes:
            served = book.get(analysis)
            if served is None:
                continue
            m = served.models
            add(
                f"/predict/{served.analysis}",
                {
                    "summary": f"Predict with {analysis} ({served.predictor.recipe})",
                    "operationId": f"predict_{m.single.__name__}",
                    "requestBody": body(m.single, m.batch),
                    "responses": answers(
                        "the answer(s), naming the version that made them",
                        m.answer,
                        m.answers,
                        extra={413: "the body or the batch is larger than the service takes"},
                    ),
                },
            )
            if m.online is None:
                continue
            add(
                f"/events/{served.analysis}",
                {
                    "summary": f"Live events for {analysis} ({served.predictor.recipe})",
                    "operationId": f"events_{m.online.event.__name__}",
                    "requestBody": body(m.online.event, m.online.events),
                    "responses": {
                        **answers(
                            "how many events were kept, and each refused one with its reason",
                            EventsAnswer,
                            extra={409: "the single event is older than the lateness allows"},
                        ),
                    },
                },
            )
            add(
                f"/score/{served.analysis}",
                {
                    "summary": f"A user's items ranked now ({analysis})",
                    "operationId": f"score_{m.online.score.__name__}",
                    "requestBody": body(m.online.score),
                    "responses": answers(
                        "the items ranked by probability, with what drove each",
                        ScoreAnswer,
                        extra={409: "at is older than the lateness allows"},
                    ),
                },
            )
        for item in schema["paths"].values():  # behind the token: it may answer 401
            for operation in item.values():
                if operation.get("security"):
                    operation["responses"]["401"] = {"description": "missing or wrong token"}
        if "/metrics" in schema["paths"]:
            schema["paths"]["/metrics"]["get"]["responses"]["200"]["content"] = {
                CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}
            }
        if any(f"/score/{a}" in schema["paths"] for a in book.recipes):
            schema.setdefault("components", {}).setdefault("schemas", {}).update(
                {m.__name__: m.model_json_schema() for m in (EventsAnswer, ScoreAnswer)}
            )
        return schema

    return build


def create_app(
    settings: ServiceSettings,
    *,
    source: ModelSource | None = None,
    state: StateStore | None = None,
    events: EventStates | None = None,
) -> FastAPI:
    """The service for ``settings.project`` (or the given model ``source`` and ``state`` store).

    Loads every analysis's current model now (ConfigError for a bad project or
    state URL, SourceError for an unreachable Redis); starts polling for new
    versions when the server starts.
    """
    if source is None:
        from opslens.api import load_project

        project = load_project(settings.project)
        source = ProjectModels(project, settings.alias)
        if events is None:
            events = project_states(project)
    states = events if events is not None else EventStates()  # empty states
    store: StateStore = state if state is not None else open_state(settings.state)
    if states.log is None and state is None and settings.state != "memory":
        from opslens.online.service.event_log import RedisEventLog

        states.log = RedisEventLog(settings.state)  # live events shared by every worker
    book = ModelBook(source)
    book.refresh()
    _freeze()
    for analysis, problem in book.problems.items():
        log.warning("'%s' is not served yet: %s", analysis, problem)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        poller = asyncio.create_task(_poll(book, settings.poll_seconds))
        try:
            yield
        finally:
            poller.cancel()
            with suppress(asyncio.CancelledError):
                await poller
            await store.close()

    app = FastAPI(
        title="opslens",
        version=__version__,
        description="Predictions of every analysis of an opslens project, from its registry alias.",
        lifespan=lifespan,
        docs_url=None,  # served below, behind the token when one is set
        redoc_url=None,
        openapi_url=None,
    )
    app.state.book = book
    app.state.store = store
    app.state.events = states
    guard = _guard(settings)
    metrics = ServiceMetrics(book.loaded)
    app.state.metrics = metrics
    recent = RecentAnswers()
    app.state.recent = recent
    predictions = Predictions(book, settings, metrics, recent, store)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        return _json({"detail": trimmed(exc.errors())}, 422)

    @app.get("/openapi.json", dependencies=guard, include_in_schema=False)
    async def openapi() -> dict[str, Any]:
        return app.openapi()

    @app.get("/docs", dependencies=guard, include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="opslens · API")

    @app.get("/redoc", dependencies=guard, include_in_schema=False)
    async def redoc() -> Response:
        return get_redoc_html(openapi_url="/openapi.json", title="opslens · API")

    @app.get("/metrics", dependencies=guard, summary="Prometheus metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/health", summary="Liveness (no token needed)")
    async def health() -> dict[str, Any]:
        loaded = [a for a in book.recipes if book.get(a) is not None]
        return {"status": "ok", "analyses": len(book.recipes), "loaded": len(loaded)}

    @app.get("/models", dependencies=guard, summary="What is loaded, per analysis")
    async def models() -> dict[str, Any]:
        return {"models": book.describe()}

    @app.get(
        "/recent/{analysis}",
        dependencies=guard,
        summary="Newest answered instances (live views)",
        responses={404: {"description": "no analysis of that name"}},
    )
    async def get_recent(analysis: str, n: int = 500, stream: str | None = None) -> Response:
        if analysis not in book.recipes:
            known = list(book.recipes)
            detail = f"no analysis named '{analysis}'; fix: use one of: {', '.join(known)}"
            return _json({"detail": detail, "known": known}, 404)
        rows = recent.newest(analysis, max(0, min(n, MAX_RECENT)), stream=stream)
        return _json({"analysis": analysis, "recipe": book.recipes[analysis], "rows": rows})

    @app.post("/predict/{analysis}", dependencies=guard, include_in_schema=False)
    async def predict(analysis: str, request: Request) -> Response:
        # what FastPredict (in front) did not answer: an analysis not served (404, 409, 503)
        started = time.perf_counter()
        status = 500
        try:
            status, body = await predictions.reply(
                analysis, request.headers.get("content-length"), request.receive
            )
            return Response(body, status_code=status, media_type="application/json")
        finally:
            metrics.observe(predictions.label(analysis), status, time.perf_counter() - started)

    @app.post("/events/{analysis}", dependencies=guard, include_in_schema=False)
    async def post_events(analysis: str, request: Request) -> Response:
        return await _online(analysis, request, ingest_body)

    @app.post("/score/{analysis}", dependencies=guard, include_in_schema=False)
    async def post_score(analysis: str, request: Request) -> Response:
        return await _online(analysis, request, score_body)

    async def _online(analysis: str, request: Request, handle: Callable[..., Any]) -> Response:
        started = time.perf_counter()
        status = 500
        label = predictions.label(analysis)
        try:
            served = book.get(analysis)
            if served is None:
                status, said = predictions.unserved(analysis) or (503, b"")  # as /predict says
                return Response(said, status_code=status, media_type="application/json")
            try:
                payload = await predictions.body(
                    request.headers.get("content-length"), request.receive
                )
            except BodyError as e:
                if e.status == 422:
                    status = 422
                    raise RequestValidationError(e.errors) from None
                status = 413
                return _json({"detail": e.errors[0]["msg"]}, 413)
            online = served.models.online
            if online is not None:  # a model that takes no events is refused by the handler
                status = 422
                if handle is score_body:
                    invalid(online.score, payload)
                elif not (isinstance(payload, dict) and "events" in payload):
                    invalid(online.event, payload)
                else:
                    invalid(online.events, payload)
            try:
                result = await run_in_threadpool(
                    handle, states, analysis, served.predictor, payload
                )
            except SourceError as e:  # the event store went away
                status = 503
                return _json({"detail": str(e)}, 503)
            except OpslensError as e:
                if getattr(e, "conflict", False):  # older than the state allows
                    status = 409
                    return _json({"detail": str(e)}, 409)
                status = 422
                where = getattr(e, "field", None)
                raise refused(e, *(() if where is None else (where,))) from None
            status = 200
            return _json({**served.stamp(), **result})
        finally:
            metrics.observe(label, status, time.perf_counter() - started)

    app.openapi = _openapi(app, book, bool(guard))  # type: ignore[method-assign]
    stack = app.build_middleware_stack  # the fast path in front of the whole stack
    app.build_middleware_stack = lambda: FastPredict(  # type: ignore[method-assign]
        stack(), predictions, settings.token()
    )
    return app
