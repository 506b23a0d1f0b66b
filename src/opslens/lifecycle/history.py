"""The monitoring history of a deployed model in a database (SQLAlchemy; SQLite or PostgreSQL).

Four append-only tables: batches (one row per scored batch, its metrics as JSON),
errors, trainings and alias moves (the audit MLflow does not keep: which version
held which alias, from when, and why it moved). Every write is one INSERT in its
own transaction, so processes writing at once lose nothing; a batch's number is
its row id.

Example:
    >>> import tempfile
    >>> store = HistoryStore(f"sqlite:///{tempfile.mkdtemp()}/history.db")
    >>> store.add_batch("pat", {"model_version": 1, "rows_in": 10, "noise_ratio": 0.1})
    1
    >>> store.batches("pat")[0]["rows_in"], store.batches("other")
    (10, [])
    >>> _ = store.add_alias_move("pat", "champion", "1", None, "initial training")
    >>> store.alias_moves("pat")[0]["reason"]
    'initial training'
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from opslens.errors import SourceError
from opslens.io.sources.sql import engine_url

__all__ = ["HistoryStore"]

_META = sa.MetaData()
BATCHES = sa.Table(
    "opslens_batches",
    _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("analysis", sa.String(200), nullable=False, index=True),
    sa.Column("recorded_at", sa.String(40), nullable=False),
    sa.Column("model_version", sa.String(40)),
    sa.Column("record", sa.Text, nullable=False),
)
ERRORS = sa.Table(
    "opslens_errors",
    _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("analysis", sa.String(200), nullable=False, index=True),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
)
TRAININGS = sa.Table(
    "opslens_trainings",
    _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("analysis", sa.String(200), nullable=False, index=True),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("version", sa.String(40)),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("details", sa.Text, nullable=False),
)
ALIASES = sa.Table(
    "opslens_alias_moves",
    _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("analysis", sa.String(200), nullable=False, index=True),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("alias", sa.String(40), nullable=False),
    sa.Column("version", sa.String(40), nullable=False),
    sa.Column("previous", sa.String(40)),
    sa.Column("reason", sa.Text, nullable=False),
)


def _now() -> str:
    return datetime.now(UTC).isoformat()


class HistoryStore:
    """Append-only monitoring history at a SQLAlchemy URL (tables made on first use)."""

    def __init__(self, url: str, *, key: str = "params.monitor.history_url") -> None:
        self.url = url
        self.key = key
        connect = {"timeout": 30} if url.startswith("sqlite") else {}
        self.engine = sa.create_engine(engine_url(url), connect_args=connect)
        self._create()

    def _create(self) -> None:
        for attempt in range(5):
            try:
                _META.create_all(self.engine, checkfirst=True)
                return
            except sa.exc.OperationalError as e:
                if attempt == 4 or not self.url.startswith(("postgres", "sqlite")):
                    raise SourceError(
                        f"the monitoring history at {sa.make_url(engine_url(self.url)).render_as_string(hide_password=True)} "
                        f"cannot be opened ({str(e).splitlines()[0]})",
                        fix=f"set {self.key} to a reachable database URL",
                    ) from None
            except (sa.exc.IntegrityError, sa.exc.ProgrammingError):
                pass  # another process created a table at the same moment
            time.sleep(0.05 * (attempt + 1))

    def _insert(self, table: sa.Table, **values: Any) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(table.insert().values(**values))
            key = result.inserted_primary_key
            return int(key[0]) if key else 0

    def add_batch(self, analysis: str, record: dict[str, Any]) -> int:
        """Append a batch record; its number (the row id) is returned (and read back as ``batch``)."""
        return self._insert(
            BATCHES,
            analysis=analysis,
            recorded_at=str(record.get("recorded_at") or _now()),
            model_version=str(record.get("model_version")),
            record=json.dumps(record, default=str),
        )

    def batches(self, analysis: str) -> list[dict[str, Any]]:
        """Every batch record of ``analysis``, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(BATCHES.c.id, BATCHES.c.record)
                .where(BATCHES.c.analysis == analysis)
                .order_by(BATCHES.c.id)
            ).all()
        return [{**json.loads(r[1]), "batch": int(r[0])} for r in rows]

    def add_error(self, analysis: str, kind: str, message: str) -> None:
        """Append an error (a rejected batch, a failed retraining)."""
        self._insert(ERRORS, analysis=analysis, at=_now(), kind=kind, message=message)

    def errors(self, analysis: str) -> list[dict[str, Any]]:
        """Every error of ``analysis``, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(ERRORS.c.at, ERRORS.c.kind, ERRORS.c.message)
                .where(ERRORS.c.analysis == analysis)
                .order_by(ERRORS.c.id)
            ).all()
        return [{"at": r[0], "kind": r[1], "message": r[2]} for r in rows]

    def add_training(
        self, analysis: str, version: str | None, reason: str, details: dict[str, Any]
    ) -> None:
        """Record a training or retraining (its version, reason and comparison)."""
        self._insert(
            TRAININGS,
            analysis=analysis,
            at=_now(),
            version=version,
            reason=reason,
            details=json.dumps(details, default=str),
        )

    def trainings(self, analysis: str) -> list[dict[str, Any]]:
        """Every training of ``analysis``, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    TRAININGS.c.at, TRAININGS.c.version, TRAININGS.c.reason, TRAININGS.c.details
                )
                .where(TRAININGS.c.analysis == analysis)
                .order_by(TRAININGS.c.id)
            ).all()
        return [
            {"at": r[0], "version": r[1], "reason": r[2], "details": json.loads(r[3])} for r in rows
        ]

    def add_alias_move(
        self, analysis: str, alias: str, version: str, previous: str | None, reason: str
    ) -> int:
        """Record that ``alias`` moved from ``previous`` to ``version``, and why."""
        return self._insert(
            ALIASES,
            analysis=analysis,
            at=_now(),
            alias=alias,
            version=str(version),
            previous=previous,
            reason=reason,
        )

    def alias_moves(self, analysis: str) -> list[dict[str, Any]]:
        """Every alias move of ``analysis``, oldest first, with ``until`` (the next move's time)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    ALIASES.c.at,
                    ALIASES.c.alias,
                    ALIASES.c.version,
                    ALIASES.c.previous,
                    ALIASES.c.reason,
                )
                .where(ALIASES.c.analysis == analysis)
                .order_by(ALIASES.c.id)
            ).all()
        moves = [
            {
                "at": r[0],
                "alias": r[1],
                "version": r[2],
                "previous": r[3],
                "reason": r[4],
                "until": None,
            }
            for r in rows
        ]
        for i, move in enumerate(moves):
            later = [m for m in moves[i + 1 :] if m["alias"] == move["alias"]]
            if later:
                move["until"] = later[0]["at"]
        return moves

    @property
    def locks(self) -> bool:
        """Whether :meth:`exclusive` takes a lock (PostgreSQL advisory locks); else the caller
        locks some other way (a file)."""
        return self.engine.dialect.name == "postgresql"

    @contextlib.contextmanager
    def exclusive(self, analysis: str) -> Iterator[None]:
        """Hold the PostgreSQL advisory lock of ``analysis`` (one per analysis name, waited
        for) until the block ends; another process asking for it waits. A no-op elsewhere.

        Example:
            >>> import tempfile
            >>> with HistoryStore(f"sqlite:///{tempfile.mkdtemp()}/h.db").exclusive("pat"):
            ...     pass
        """
        if not self.locks:
            yield
            return
        digest = hashlib.sha256(f"opslens:{analysis}".encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()

    def dispose(self) -> None:
        """Close the connection pool."""
        self.engine.dispose()
