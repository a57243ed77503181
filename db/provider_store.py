"""API providers in SQLite, with ordered named migrations so an older database keeps working."""

from __future__ import annotations

import logging
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from tools.core.errors import UserError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from schema.provider import APIProvider

log = logging.getLogger("workbench")

# The database and the files SQLite keeps beside it; they hold API keys, so only the owner reads them.
SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")


def _columns(conn: Connection, table: str) -> set[str]:
    from sqlalchemy import text

    return {row[1] for row in conn.execute(text(f"PRAGMA table_info({table})"))}


def _m0001_create_provider_table(conn: Connection) -> None:
    from sqlalchemy import text

    # The prototype's table, created as it had it, so a prototype database and a new one
    # go through the same later migrations.
    conn.execute(
        text(
            "CREATE TABLE IF NOT EXISTS apiprovider ("
            " id INTEGER PRIMARY KEY,"
            " base_url VARCHAR NOT NULL,"
            " model_id VARCHAR NOT NULL,"
            " api_key VARCHAR,"
            " created_at DATETIME NOT NULL)"
        )
    )


def _m0002_provider_name_limits_prices(conn: Connection) -> None:
    from sqlalchemy import text

    existing = _columns(conn, "apiprovider")
    additions = {
        "name": "VARCHAR",
        "max_concurrency": "INTEGER NOT NULL DEFAULT 8",
        "timeout_s": "FLOAT NOT NULL DEFAULT 60.0",
        "price_input_per_m": "FLOAT",
        "price_output_per_m": "FLOAT",
    }
    for column, ddl in additions.items():
        if column not in existing:
            conn.execute(text(f"ALTER TABLE apiprovider ADD COLUMN {column} {ddl}"))
    # Rows from before names existed get one derived from their model id, unique by id.
    conn.execute(text("UPDATE apiprovider SET name = model_id || '-' || id WHERE name IS NULL OR name = ''"))
    conn.execute(text("CREATE UNIQUE INDEX IF NOT EXISTS ix_apiprovider_name ON apiprovider (name)"))


def _m0003_provider_context_tokens(conn: Connection) -> None:
    from sqlalchemy import text

    if "context_tokens" not in _columns(conn, "apiprovider"):
        conn.execute(text("ALTER TABLE apiprovider ADD COLUMN context_tokens INTEGER"))


# Append only: a released migration is never edited, a change is a new entry.
MIGRATIONS: list[tuple[str, Callable[[Connection], None]]] = [
    ("0001_create_provider_table", _m0001_create_provider_table),
    ("0002_provider_name_limits_prices", _m0002_provider_name_limits_prices),
    ("0003_provider_context_tokens", _m0003_provider_context_tokens),
]


def migrate(engine: Engine) -> list[str]:
    """Apply the migrations not yet recorded in `_migrations`; returns the names applied."""
    from sqlalchemy import text

    applied_now = []
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS _migrations (name VARCHAR PRIMARY KEY, applied_at VARCHAR NOT NULL)"))
        done = {row[0] for row in conn.execute(text("SELECT name FROM _migrations"))}
        for name, step in MIGRATIONS:
            if name in done:
                continue
            step(conn)
            conn.execute(
                text("INSERT INTO _migrations (name, applied_at) VALUES (:name, :at)"),
                {"name": name, "at": datetime.now(timezone.utc).isoformat()},
            )
            applied_now.append(name)
    return applied_now


def make_database_private(db_path: Path) -> None:
    """Create `db_path` as 0600 if missing (before SQLite opens it) and chmod it and its side files to 0600.

    SQLite gives a new -journal/-wal file the main file's mode, so a private main file keeps them private;
    files left by an older version (0644) are fixed here on every start.
    """
    db_path = Path(db_path)
    if not db_path.exists():
        db_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(db_path, os.O_WRONLY | os.O_CREAT, 0o600))
    for path in [db_path, *(db_path.with_name(db_path.name + suffix) for suffix in SQLITE_SIDE_FILES)]:
        try:
            if path.is_file():
                os.chmod(path, 0o600)
        except OSError as exc:  # not our file (e.g. another user's work directory): say so, keep working
            log.warning("could not make %s private (mode 0600): %s", path, exc)


def _sql():
    """SQLModel's Session and select and the provider table, imported when a store is first used."""
    from sqlmodel import Session, select

    from schema.provider import APIProvider

    return Session, select, APIProvider


class ProviderStore:
    """CRUD for API providers; every write goes through `validate_provider_input`."""

    def __init__(self, db_path: Path):
        self.db_path = Path(db_path)
        make_database_private(self.db_path)
        self._engine: Engine | None = None
        self._opening = threading.Lock()

    @property
    def engine(self) -> Engine:
        """The database, opened and migrated on first use: a command that never reads a provider (datasets,
        docs, train, ...) does not import SQLAlchemy and SQLModel, a third of a second of its start-up."""
        if self._engine is None:
            with self._opening:
                if self._engine is None:
                    from sqlmodel import create_engine

                    engine = create_engine(f"sqlite:///{self.db_path}", connect_args={"check_same_thread": False})
                    migrate(engine)
                    self._engine = engine
        return self._engine

    def list(self) -> list[APIProvider]:
        Session, select, APIProvider = _sql()
        with Session(self.engine) as session:
            return list(session.exec(select(APIProvider).order_by(APIProvider.id)).all())

    def names(self) -> list[str]:
        return [p.name for p in self.list()]

    def get(self, name: str) -> APIProvider:
        Session, select, APIProvider = _sql()
        with Session(self.engine) as session:
            provider = session.exec(select(APIProvider).where(APIProvider.name == name)).first()
        if provider is None:
            raise UserError("error.not_found", what="provider", name=name)
        return provider

    def find(self, name: str) -> APIProvider | None:
        try:
            return self.get(name)
        except UserError:
            return None

    def add(self, **fields) -> APIProvider:
        from schema.provider import validate_provider_input

        Session, select, APIProvider = _sql()
        values = validate_provider_input(**fields)
        with Session(self.engine) as session:
            if session.exec(select(APIProvider).where(APIProvider.name == values["name"])).first():
                raise UserError("error.already_exists", what="provider", name=values["name"])
            provider = APIProvider(**values)
            session.add(provider)
            session.commit()
            session.refresh(provider)
            return provider

    def update(self, current_name: str, keep_key_if_empty: bool = True, **fields) -> APIProvider:
        """Edit a provider; an empty api_key keeps the stored one (the UI never shows it back).

        A kept key stays with the Base URL it was saved with: changing the URL needs the key again.
        """
        from schema.provider import stored_key_for, validate_provider_input

        Session, select, APIProvider = _sql()
        values = validate_provider_input(**fields)
        with Session(self.engine) as session:
            provider = session.exec(select(APIProvider).where(APIProvider.name == current_name)).first()
            if provider is None:
                raise UserError("error.not_found", what="provider", name=current_name)
            if values["name"] != current_name and session.exec(
                select(APIProvider).where(APIProvider.name == values["name"])
            ).first():
                raise UserError("error.already_exists", what="provider", name=values["name"])
            if keep_key_if_empty and values["api_key"] is None:
                values["api_key"] = stored_key_for(provider, values["base_url"])
            for key, value in values.items():
                setattr(provider, key, value)
            session.add(provider)
            session.commit()
            session.refresh(provider)
            return provider

    def delete(self, name: str) -> None:
        Session, select, APIProvider = _sql()
        with Session(self.engine) as session:
            provider = session.exec(select(APIProvider).where(APIProvider.name == name)).first()
            if provider is None:
                raise UserError("error.not_found", what="provider", name=name)
            session.delete(provider)
            session.commit()

    def bootstrap_from_env(self) -> APIProvider | None:
        """Like the prototype: API_KEY, BASE_URL, MODEL_ID from the environment or .env seed an empty store."""
        from dotenv import load_dotenv

        load_dotenv(override=False)
        api_key, base_url, model_id = (os.getenv(k) for k in ("API_KEY", "BASE_URL", "MODEL_ID"))
        if not (base_url and model_id) or self.list():
            return None
        return self.add(name=model_id.replace("/", "-"), base_url=base_url, model_id=model_id, api_key=api_key)
