"""``POST /predict/{analysis}``: what it answers, and a pure-ASGI fast path in front of FastAPI.

:class:`Predictions` makes the answer of one prediction request — the status and the JSON
bytes — from the analysis, the body's declared length and the ASGI ``receive`` channel:
404/409/503 for an analysis not served, 413 for a body over the limit (checked from
``Content-Length`` and while the body streams in) or an oversized batch, 422 in FastAPI's
shape (``detail[].loc`` names the field) for a bad payload or an instance the predictor
refuses, else 200 with the stamp of the version that answered. FastAPI's route answers
with it, and so does :class:`FastPredict`, an ASGI middleware in front of the whole
application: a ``POST /predict/<analysis>`` of a served analysis that carries the right
token (when one is set) is answered there, without FastAPI's routing, request object,
dependencies and response classes (about half a request's CPU under load); every other
request — a wrong token, an analysis not served, any other route — goes on to FastAPI
unchanged. Both count the request in the metrics.

Example:
    >>> import asyncio
    >>> from opslens.core.predictor import BasePredictor
    >>> from opslens.online.service.served import ModelBook, Release
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
    >>> book = ModelBook(One()); _ = book.refresh()
    >>> from opslens.online.service.metrics import ServiceMetrics
    >>> from opslens.online.service.recent import RecentAnswers
    >>> from opslens.online.service.settings import ServiceSettings
    >>> p = Predictions(book, ServiceSettings(), ServiceMetrics(book.loaded), RecentAnswers())
    >>> async def receive():
    ...     return {"type": "http.request", "body": b'{"x": "2"}', "more_body": False}
    >>> status, body = asyncio.run(p.reply("dbl", None, receive))
    >>> status, body[:60]
    (422, b'{"detail":[{"type":"float_type","loc":["body","x"],"msg":"In')
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from anyio import CapacityLimiter, lowlevel, to_thread
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from opslens.errors import OpslensError, SourceError
from opslens.online.service.body import BodyError, excerpt, parse, read
from opslens.online.service.metrics import ServiceMetrics
from opslens.online.service.recent import RecentAnswers
from opslens.online.service.served import ModelBook, Pace, ServedModel
from opslens.online.service.settings import ServiceSettings
from opslens.online.service.state import MemoryState, StateStore, dumpb

__all__ = ["FastPredict", "Predictions", "invalid", "refused", "trimmed"]

log = logging.getLogger("opslens.serve")

Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[[Any, Receive, Send], Awaitable[None]]

_TAGS = {"str", "int", "float", "bool", "constrained-float", "constrained-str", "literal"}


def _path(loc: tuple[Any, ...], payload: Any) -> tuple[Any, ...]:
    """``loc`` without pydantic's union-member tags (``str``, ``function-after[...]``): only the
    keys and positions of the payload, and the name of a missing field."""
    out: list[Any] = []
    here = payload
    for part in loc:
        if isinstance(here, dict) and part in here:
            here = here[part]
        elif isinstance(here, list) and isinstance(part, int) and 0 <= part < len(here):
            here = here[part]
        elif isinstance(part, str) and ("[" in part or part in _TAGS):
            continue
        else:
            here = None
        out.append(part)
    return tuple(out)


def invalid(model: type[BaseModel], payload: Any) -> None:
    """RequestValidationError (422, FastAPI's shape) naming each bad field and the fix."""
    try:
        model.model_validate(payload)
    except ValidationError as e:
        errors = e.errors(include_url=False, include_context=False)
        fix = "; fix: send what the request schema says (GET /openapi.json, or /docs)"
        raise RequestValidationError(
            [
                {**err, "loc": ("body", *_path(err["loc"], payload)), "msg": err["msg"] + fix}
                for err in errors
            ]
        ) from None


def refused(error: OpslensError, *where: str | int) -> RequestValidationError:
    """The predictor's own refusal of an instance, as a 422 in the same shape."""
    return RequestValidationError(
        [{"type": "instance", "loc": ("body", *where), "msg": str(error)}]
    )


def trimmed(errors: Any) -> list[dict[str, Any]]:
    """Validation errors as answered: JSON-safe, the input only as a short excerpt."""
    out = []
    for err in errors:
        err = {k: v for k, v in dict(err).items() if k not in ("ctx", "url")}
        if "input" in err:
            err["input"] = excerpt(err["input"])
        out.append(err)
    return out


def _predict_many(
    served: ServedModel, instances: list[dict[str, Any]], batch: bool
) -> list[dict[str, Any]]:
    out = []
    for i, instance in enumerate(instances):
        try:
            out.append(served.predictor.predict_one(instance))
        except OpslensError as e:
            raise (refused(e, "instances", i) if batch else refused(e)) from None
    return out


def _checked(call: Callable[[Any], dict[str, Any] | None], payload: Any) -> dict[str, Any] | None:
    """``call(payload)``: a predictor's ``predict_checked``, None also when it refuses the
    instance (the usual path then validates it and refuses it as it should)."""
    try:
        return call(payload)
    except OpslensError:
        return None


async def _step(
    served: ServedModel,
    store: StateStore,
    stream: str,
    instances: list[dict[str, Any]],
    batch: bool,
) -> list[dict[str, Any]]:
    """Step the stream through ``instances`` under its lock; state saved only if all succeed."""
    key = f"{served.analysis}/{stream}"
    answers = []
    async with store.lock(key):
        state = await store.get(key)
        for i, instance in enumerate(instances):
            try:
                answer, state = served.predictor.step(instance, state)
            except OpslensError as e:
                raise (refused(e, "instances", i) if batch else refused(e)) from None
            answers.append(answer)
        if state is not None:
            await store.set(key, state)
    return answers


class Predictions:
    """The answers of ``POST /predict/{analysis}``, as status and JSON bytes."""

    def __init__(
        self,
        book: ModelBook,
        settings: ServiceSettings,
        metrics: ServiceMetrics,
        recent: RecentAnswers,
        store: StateStore | None = None,
    ) -> None:
        self.book = book
        self.metrics = metrics
        self.recent = recent
        self.store: StateStore = store if store is not None else MemoryState()
        self.max_body = settings.max_body_bytes
        self.max_batch = settings.max_batch
        #: predictions in threads at once: one per core (more threads only contend for the
        #: cores and the GIL; the others wait their turn, the event loop answers /health)
        self.cpu = CapacityLimiter(max(2, os.cpu_count() or 2))
        #: prediction requests being answered now (read, parsed, waiting or predicted)
        self.busy = 0
        self.body_fix = (
            f"send at most {settings.max_body_bytes:,} bytes per request, in batches of at most "
            f"{settings.max_batch} instances (or start the service with a larger --max-body-mb)"
        )

    def label(self, analysis: str) -> str:
        """The analysis as the metrics name it (``unknown`` for a name not served)."""
        return analysis if analysis in self.book.recipes else "unknown"

    def unserved(self, analysis: str) -> tuple[int, bytes] | None:
        """404 (unknown), 409 (no version yet) or 503 (not loaded) for an analysis with no
        model loaded; None when one is."""
        if self.book.get(analysis) is not None:
            return None
        if analysis in self.book.recipes:
            status = 409 if analysis in self.book.missing else 503
            return status, dumpb({"detail": self.book.problems.get(analysis, "not loaded yet")})
        known = list(self.book.recipes)
        detail = f"no analysis named '{analysis}'; fix: use one of: {', '.join(known)}"
        return 404, dumpb({"detail": detail, "known": known})

    async def body(self, length: str | None, receive: Receive) -> Any:
        """The parsed body (BodyError 413 or 422, as :func:`~.body.read` and :func:`~.body.parse`)."""
        return parse(await read(length, receive, self.max_body, self.body_fix))

    async def inline(self, pace: Pace) -> bool:
        """Whether to make a single answer on the event loop: a cheap model's always
        (:meth:`.Pace.inline`); a dearer one's only when its request is the only one being
        answered, counted after one turn of the event loop, which lets the requests that
        arrived with it start (they count themselves in :attr:`busy`)."""
        if pace.inline():
            return True
        if not pace.inline(alone=True):
            return False
        await lowlevel.checkpoint()
        return self.busy == 1

    async def reply(self, analysis: str, length: str | None, receive: Receive) -> tuple[int, bytes]:
        """The status and JSON body answering a prediction request (any 4xx included)."""
        self.busy += 1
        try:
            return await self._reply(analysis, length, receive)
        except RequestValidationError as e:
            return 422, dumpb({"detail": trimmed(e.errors())})
        finally:
            self.busy -= 1

    async def _reply(
        self, analysis: str, length: str | None, receive: Receive
    ) -> tuple[int, bytes]:
        served = self.book.get(analysis)
        if served is None:
            said = self.unserved(analysis)
            assert said is not None
            return said
        try:
            payload = await self.body(length, receive)
        except BodyError as e:
            if e.status == 422:
                raise RequestValidationError(e.errors) from None
            return 413, dumpb({"detail": e.errors[0]["msg"], "max_body_bytes": self.max_body})
        m = served.models
        batch = isinstance(payload, dict) and "instances" in payload and "instances" not in m.fields
        if batch:
            items = payload["instances"]
            if isinstance(items, list) and len(items) > self.max_batch:
                detail = (
                    f"the batch holds {len(items)} instances, more than the {self.max_batch} "
                    f"this service takes; fix: send at most {self.max_batch} per request "
                    "(or start the service with a larger --max-batch)"
                )
                return 413, dumpb({"detail": detail, "max_batch": self.max_batch})
            invalid(m.batch, payload)
            instances = items
        else:
            # a predictor that checks the instance itself (the fleet model's readings, which
            # the schema takes about as long to validate as the model to answer) answers first
            checks = getattr(served.predictor, "predict_checked", None)
            if checks is not None and m.stream_key is None:
                pace = served.pace
                if await self.inline(pace):
                    checked = pace.timed(_checked, checks, payload)
                else:
                    checked = await to_thread.run_sync(
                        pace.timed, _checked, checks, payload, limiter=self.cpu
                    )
                if checked is not None:
                    self.recent.add(analysis, [payload], [checked], version=served.version)
                    return 200, served.heads[0] + dumpb(checked) + b"}"
            invalid(m.single, payload)
            instances = [payload]
        if m.stream_key is None:
            pace = served.pace
            if batch:
                answers = await to_thread.run_sync(
                    _predict_many, served, instances, batch, limiter=self.cpu
                )
            elif await self.inline(pace):  # cheap so far: answered here, no thread hop
                answers = pace.timed(_predict_many, served, instances, batch)
            else:
                answers = await to_thread.run_sync(
                    pace.timed, _predict_many, served, instances, batch, limiter=self.cpu
                )
            self.recent.add(analysis, instances, answers, version=served.version)
            single, many = served.heads
            return 200, (many if batch else single) + dumpb(answers if batch else answers[0]) + b"}"
        stamp = served.stamp()
        stamp[m.stream_key] = stream = str(payload[m.stream_key])
        instances = [{**i, m.stream_key: stream} for i in instances]
        try:
            answers = await _step(served, self.store, stream, instances, batch)
        except SourceError as e:  # the state store went away: nothing was answered or saved
            return 503, dumpb({"detail": str(e)})
        self.recent.add(analysis, instances, answers, version=served.version)
        return 200, dumpb(
            {**stamp, "answers": answers} if batch else {**stamp, "answer": answers[0]}
        )


_PREFIX = "/predict/"
_JSON = (b"content-type", b"application/json")
_TEXT = (b"content-type", b"text/plain; charset=utf-8")


class FastPredict:
    """ASGI middleware: a ``POST /predict/<analysis>`` of a served analysis with the right token
    answered by :class:`Predictions` directly; everything else passed on to ``app`` (FastAPI)."""

    def __init__(self, app: ASGIApp, predictions: Predictions, token: str | None) -> None:
        self.app = app
        self.predictions = predictions
        self.token = None if token is None else token.encode()

    def _authorised(self, headers: list[tuple[bytes, bytes]]) -> bool:
        """Whether the request carries ``Authorization: Bearer <token>`` (as FastAPI's
        ``HTTPBearer`` reads it), or no token is set."""
        if self.token is None:
            return True
        for name, value in headers:
            if name == b"authorization":
                scheme, _, sent = value.partition(b" ")
                sent = sent.strip()
                return (
                    bool(scheme and sent)
                    and scheme.lower() == b"bearer"
                    and secrets.compare_digest(sent, self.token)
                )
        return False

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        """Answer a fast-path request, or hand the request on."""
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        path: str = scope["path"]
        analysis = path[len(_PREFIX) :]
        if not path.startswith(_PREFIX) or not analysis or "/" in analysis:
            return await self.app(scope, receive, send)
        if self.predictions.book.get(analysis) is None:
            return await self.app(scope, receive, send)  # FastAPI answers 404, 409 or 503
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        if not self._authorised(headers):
            return await self.app(scope, receive, send)  # FastAPI answers the 401
        length = None
        for name, value in headers:
            if name == b"content-length":
                length = value.decode("latin-1")
                break
        started = time.perf_counter()
        status = 500
        kind = _JSON
        try:
            status, body = await self.predictions.reply(analysis, length, receive)
        except ClientDisconnect:
            return  # nobody to answer
        except Exception:  # a predictor's bug: 500, as FastAPI's error middleware answers it
            log.exception("answering POST %s failed", path)
            body, kind = b"Internal Server Error", _TEXT
        finally:
            self.predictions.metrics.observe(analysis, status, time.perf_counter() - started)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", str(len(body)).encode()), kind],
            }
        )
        await send({"type": "http.response.body", "body": body})
