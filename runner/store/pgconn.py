"""Connecting to a PostgreSQL state: libpq's conventions, and errors without secrets.

The URL goes to libpq as it is, so everything libpq reads works as it does for ``psql``:
``PGPASSWORD``, ``~/.pgpass``, ``PGSERVICE`` / ``service=``, ``sslmode``, ``PGHOST``...
A password written in the URL is only ever given to libpq: ``safe_label`` is what the runner
prints, logs or stores, and every error text has the password scrubbed out of it.

A connection that fails (refused, timed out, the server restarted mid-run) is a
``StateUnavailable`` (exit 3, resumable: the journal's rows make the next run exact); a refused
login or a missing database is a plain user error.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from runner.errors import CampaignError, StoppedEarly

SCHEMES = ("postgresql://", "postgres://")


class StateUnavailable(StoppedEarly):
    """The state database cannot be reached (exit 3: run again once it is back)."""


def is_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SCHEMES)


def _parts(url: str) -> dict[str, str]:
    from psycopg.conninfo import conninfo_to_dict

    try:
        return {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
    except Exception:  # noqa: BLE001 - a malformed URL: label it without parsing
        return {}


def safe_label(url: str) -> str:
    """``postgresql://user@host:port/db``: the URL without its password or query (which may
    hold one too); what every message and record names."""
    p = _parts(url)
    user = f"{quote(p['user'])}@" if p.get("user") else ""
    host = p.get("host", "")
    port = f":{p['port']}" if p.get("port") else ""
    db = p.get("dbname", "")
    service = f"?service={p['service']}" if p.get("service") else ""
    return f"postgresql://{user}{host}{port}/{db}{service}"


def _secrets(url: str) -> list[str]:
    """Every spelling of a password the URL holds (decoded or not, userinfo or query),
    longest first."""
    from urllib.parse import parse_qs, unquote, urlsplit

    p = _parts(url)
    found = {p["password"]} if p.get("password") else set()
    m = re.match(r"^[a-z]+://[^:/@]*:([^@/]+)@", url)
    if m:
        found |= {m.group(1), unquote(m.group(1))}
    try:
        for value in parse_qs(urlsplit(url).query).get("password", []):
            found |= {value, quote(value)}
    except ValueError:
        pass
    return sorted((s for s in found if s), key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return text


def _endpoint(url: str, conn: Any = None) -> str:
    """``host HOST port PORT``: where the state lives (libpq's defaults when the URL says
    nothing: PGHOST, PGPORT, the local socket, 5432)."""
    if conn is not None:
        try:
            return f"host {conn.info.host} port {conn.info.port}"
        except Exception:  # noqa: BLE001 - a broken connection may not answer even this
            pass
    import os

    p = _parts(url)
    host = p.get("host") or os.environ.get("PGHOST") or "localhost (local socket)"
    port = p.get("port") or os.environ.get("PGPORT") or "5432"
    return f"host {host} port {port}"


def _reason(err: BaseException, url: str) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return scrub(text, url)


def state_error(
    err: BaseException, url: str, conn: Any = None, *, command: str = "the command"
) -> CampaignError:
    """A psycopg error as a user error naming the state, host, port and reason."""
    import psycopg

    label, where, reason = safe_label(url), _endpoint(url, conn), _reason(err, url)
    refused = (
        "password authentication failed",
        "no password supplied",
        "does not exist",
        "permission denied",
        "role ",
    )
    if isinstance(err, psycopg.OperationalError) and not any(w in reason for w in refused):
        return StateUnavailable(
            f"the state database is unreachable ({where}): {reason}",
            file=label,
            hint=f"nothing is lost: every request sent has its row; run {command} again once "
            "the database is back (check the host, the port and that the server runs)",
        )
    if isinstance(err, psycopg.OperationalError):
        return CampaignError(
            f"cannot use the state database ({where}): {reason}",
            file=label,
            hint="check the user, the database name and the password (PGPASSWORD, ~/.pgpass or "
            "PGSERVICE; a password in --state is never shown)",
        )
    return StateUnavailable(
        f"the state database failed ({where}): {reason}",
        file=label,
        hint=f"run {command} again; if it persists, check the server's log",
    )


def connect(url: str, *, command: str = "the command") -> Any:
    """An autocommit connection (transactions are explicit), or a user error."""
    import psycopg

    try:
        conn = psycopg.connect(
            url, autocommit=True, connect_timeout=10, application_name="campaign-runner"
        )
        # No server-side prepared statements: a prepared statement soon runs a generic plan,
        # chosen while a new campaign's rows were few (a sequential scan), and kept as they
        # grow; every UPDATE by key then read the whole table (a 20,000-message send took
        # minutes). Planned each time, a lookup by key stays an index lookup.
        conn.prepare_threshold = None
        return conn
    except psycopg.Error as err:
        raise state_error(err, url, command=command) from None
    except Exception as err:  # a malformed URL (psycopg.ProgrammingError is an Error too)
        raise CampaignError(
            f"not a usable --state URL: {_reason(err, url)}",
            file=safe_label(url),
            hint="e.g. postgresql://user@host:5432/dbname?sslmode=require",
        ) from None


async def connect_async(url: str, *, command: str = "the command") -> Any:
    """``connect`` for the event loop (psycopg's AsyncConnection), with the same errors."""
    import psycopg

    try:
        conn = await psycopg.AsyncConnection.connect(
            url, autocommit=True, connect_timeout=10, application_name="campaign-runner"
        )
    except psycopg.Error as err:
        raise state_error(err, url, command=command) from None
    except Exception as err:  # noqa: BLE001 - as in connect
        raise CampaignError(
            f"not a usable --state URL: {_reason(err, url)}", file=safe_label(url)
        ) from None
    conn.prepare_threshold = None  # as in connect
    return conn


class Row(tuple[Any, ...]):
    """A result row readable by position and by column name, like sqlite3.Row."""

    names: Sequence[str] = ()

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, str):
            return tuple.__getitem__(self, self.names.index(item))
        return tuple.__getitem__(self, item)

    def keys(self) -> list[str]:
        return list(self.names)


def _row_factory(cursor: Any) -> Any:
    names = tuple(d.name for d in cursor.description or ())
    cls = type("Row", (Row,), {"names": names, "__slots__": ()})
    return lambda values: cls(values)


_STREAMS = itertools.count(1)  # names of server-side cursors, unique per process


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement of ``Database.transaction``: ``params`` once, or ``many`` rows (psycopg's
    ``%s`` placeholders)."""

    sql: str
    params: Sequence[Any] | None = None
    many: list[Sequence[Any]] | None = None


class AsyncDatabase:
    """A connection on the event loop, for the send's journal: ``transaction`` commits a batch
    of writes, ``fetch`` reads; the loop waits for the server on the socket like for any
    response, instead of stalling on a blocking call or handing the GIL to a thread and back
    (which, with a busy loop, added milliseconds to every commit). One operation at a time: a
    read never joins a batch's pipeline (nor its transaction)."""

    def __init__(self, url: str, *, command: str = "the command") -> None:
        import asyncio

        self.url, self.command = url, command
        self.conn: Any = None
        self._turn = asyncio.Lock()

    async def transaction(self, statements: Sequence[Statement]) -> None:
        async with self._turn:
            await self._transaction(statements)

    async def _transaction(self, statements: Sequence[Statement]) -> None:
        import psycopg

        await self._connected()
        try:
            async with self.conn.pipeline(), self.conn.cursor() as cur:
                await cur.execute("BEGIN")
                for st in statements:
                    if st.many is not None:
                        await cur.executemany(st.sql, st.many)
                    else:
                        await cur.execute(st.sql, st.params)
                await cur.execute("COMMIT")
        except psycopg.Error as err:
            await self._rollback_quietly()
            raise state_error(err, self.url, self.conn, command=self.command) from None
        except BaseException:
            await self._rollback_quietly()
            raise

    async def fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            async with self._turn:
                await self._connected()
                cur = await self.conn.execute(sql, params)
                return list(await cur.fetchall())
        except psycopg.Error as err:
            raise state_error(err, self.url, self.conn, command=self.command) from None

    async def _connected(self) -> None:
        if self.conn is None:
            self.conn = await connect_async(self.url, command=self.command)

    async def _rollback_quietly(self) -> None:
        try:
            if self.conn is not None and not self.conn.closed:
                await self.conn.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - the connection is gone: nothing to roll back
            pass

    async def aclose(self) -> None:
        if self.conn is not None:
            try:
                await self.conn.close()
            except Exception:  # noqa: BLE001
                pass
            self.conn = None


class Database:
    """One connection, with ``?`` placeholders (the SQLite code's spelling) and every error a
    user error. ``execute`` returns a cursor (iterable, ``fetchone``, ``fetchall``,
    ``rowcount``)."""

    def __init__(self, url: str, *, command: str = "the command") -> None:
        self.url = url
        self.command = command
        self.conn = connect(url, command=command)

    @property
    def label(self) -> str:
        return safe_label(self.url)

    def error(self, err: BaseException) -> CampaignError:
        return state_error(err, self.url, self.conn, command=self.command)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        import psycopg

        try:
            cur = self.conn.cursor(row_factory=_row_factory)
            return cur.execute(sql.replace("?", "%s"), params)
        except psycopg.Error as err:
            raise self.error(err) from None

    def stream(
        self, sql: str, params: Sequence[Any], make: Callable[[Any], Any], size: int = 5000
    ) -> Iterator[Any]:
        """The rows of a SELECT through a server-side cursor, ``size`` at a time, each through
        ``make``: a million rows never sit in the client at once. Inside the caller's
        transaction when there is one (a snapshot); else the cursor is held past its own."""
        import psycopg

        try:
            name = f"runner_stream_{next(_STREAMS)}"
            with self.conn.cursor(name=name, withhold=not self.in_transaction) as cur:
                cur.itersize = size
                cur.execute(sql.replace("?", "%s"), params)
                while rows := cur.fetchmany(size):
                    yield from map(make, rows)
        except psycopg.Error as err:
            raise self.error(err) from None

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        """Many rows in one round trip (psycopg pipelines them); returns the rows changed."""
        import psycopg

        try:
            with self.conn.cursor() as cur:
                cur.executemany(sql.replace("?", "%s"), list(rows))
                return max(int(cur.rowcount), 0)
        except psycopg.Error as err:
            raise self.error(err) from None

    def transaction(self, statements: Sequence[Statement]) -> None:
        """Run statements in one transaction, in one round trip (pipeline mode: BEGIN, each
        statement and COMMIT leave together; the server stops at the first error and the
        transaction is rolled back)."""
        import psycopg

        try:
            with self.conn.pipeline(), self.conn.cursor() as cur:
                cur.execute("BEGIN")
                for st in statements:
                    if st.many is not None:
                        cur.executemany(st.sql, st.many)
                    else:
                        cur.execute(st.sql, st.params)
                cur.execute("COMMIT")
        except psycopg.Error as err:
            self.rollback_quietly()
            raise self.error(err) from None
        except BaseException:
            self.rollback_quietly()
            raise

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return bool(self.conn.info.transaction_status != TransactionStatus.IDLE)

    def rollback_quietly(self) -> None:
        try:
            if not self.conn.closed:
                self.conn.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - the connection is gone: nothing to roll back
            pass

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass
