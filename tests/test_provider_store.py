import sqlite3

import pytest

import global_var
from db.provider_store import MIGRATIONS, ProviderStore
from tools.core.errors import UserError
from schema.provider import mask_api_key


def test_provider_round_trip_and_masking(workdir):
    store = global_var.providers()
    added = store.add(name="deepseek", base_url="https://api.deepseek.com/v1/", model_id="deepseek-chat",
                      api_key="sk-abcdefghijklmnop1234", max_concurrency=16, timeout_s=30, price_input_per_m=2, price_output_per_m=8)
    assert added.base_url == "https://api.deepseek.com/v1"
    assert added.masked_key == "sk-...1234"
    reopened = ProviderStore(workdir.db / "db.sqlite").get("deepseek")
    assert (reopened.model_id, reopened.max_concurrency, reopened.timeout_s) == ("deepseek-chat", 16, 30)
    assert reopened.estimate_cost(1_000_000, 500_000) == pytest.approx(6.0)
    # An empty key on edit keeps the stored one (the UI never sends it back).
    updated = store.update("deepseek", name="ds", base_url="https://api.deepseek.com/v1", model_id="deepseek-reasoner", api_key="")
    assert updated.api_key == "sk-abcdefghijklmnop1234" and updated.name == "ds"
    store.delete("ds")
    assert store.names() == []


@pytest.mark.parametrize(
    "fields, fragment",
    [
        (dict(name="", base_url="http://x", model_id="m"), "cannot be empty"),
        (dict(name="a", base_url="ftp://x", model_id="m"), "http://"),
        (dict(name="a", base_url="http://x", model_id=""), "Model ID"),
        (dict(name="a", base_url="http://x", model_id="m", max_concurrency=0), "between 1 and 512"),
        (dict(name="a", base_url="http://x", model_id="m", timeout_s="abc"), "must be a number"),
        (dict(name="../a", base_url="http://x", model_id="m"), "not allowed"),
    ],
)
def test_invalid_provider_input_says_what_to_fix(workdir, fields, fragment):
    with pytest.raises(UserError) as info:
        global_var.providers().add(**fields)
    assert fragment in str(info.value)


def test_duplicate_name_refused(workdir):
    store = global_var.providers()
    store.add(name="p", base_url="http://x", model_id="m")
    with pytest.raises(UserError, match="already exists"):
        store.add(name="p", base_url="http://y", model_id="m")


def test_mask_never_reveals_short_keys():
    assert mask_api_key("short") == "****"
    assert mask_api_key(None) == ""
    assert "abcdefghij" not in mask_api_key("sk-abcdefghijklmnop")


def test_migration_from_prototype_database_keeps_rows(tmp_path):
    # The prototype's schema: no name, no limits, no prices, no migrations table.
    path = tmp_path / "db.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE apiprovider (id INTEGER PRIMARY KEY, base_url VARCHAR NOT NULL, model_id VARCHAR NOT NULL, api_key VARCHAR, created_at DATETIME NOT NULL)")
    conn.execute("INSERT INTO apiprovider (base_url, model_id, api_key, created_at) VALUES ('https://api.deepseek.com', 'deepseek-chat', 'sk-old-key-123456', '2025-01-01 00:00:00')")
    conn.commit()
    conn.close()

    store = ProviderStore(path)
    provider = store.get("deepseek-chat-1")
    assert provider.api_key == "sk-old-key-123456"
    assert provider.max_concurrency == 8 and provider.price_input_per_m is None
    applied = [row[0] for row in sqlite3.connect(path).execute("SELECT name FROM _migrations ORDER BY name")]
    assert applied == [name for name, _ in MIGRATIONS]
    # Opening again applies nothing twice and keeps the data.
    assert ProviderStore(path).get("deepseek-chat-1").base_url == "https://api.deepseek.com"


def test_bootstrap_from_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("API_KEY", "sk-env-key-abcdef")
    monkeypatch.setenv("BASE_URL", "https://api.example.com/v1")
    monkeypatch.setenv("MODEL_ID", "org/model-x")
    store = ProviderStore(tmp_path / "db.sqlite")
    created = store.bootstrap_from_env()
    assert created.name == "org-model-x" and created.api_key == "sk-env-key-abcdef"
    assert store.bootstrap_from_env() is None, "a store with providers is not seeded again"
