"""Settings from the environment: one pass, every problem in one line, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from openticket.entrypoints.settings import (
    Group,
    LockStoreMode,
    Settings,
    SettingsError,
    describe,
    grouped,
    unknown_variables,
)


def problems(env: dict[str, str]) -> tuple[str, ...]:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    return refused.value.problems


def only_problem(env: dict[str, str]) -> str:
    (problem,) = problems(env)
    return problem


@pytest.mark.parametrize(
    ("variable", "value", "advice"),
    [
        ("OPENTICKET_LOCK_STORE", "foo", "use auto, memory, redis or nats"),
        ("OPENTICKET_PERSISTENCE", "sqlite", "use auto, memory or postgres"),
        ("OPENTICKET_SEAT_ACTORS", "remote", "use auto, local or workers"),
        ("OPENTICKET_PARTITIONS", "sixteen", "use a whole number"),
        ("OPENTICKET_PARTITIONS", "16.0", "use a whole number"),
        ("OPENTICKET_PARTITIONS", "0", "use a number above 0"),
        ("OPENTICKET_HOLD_TTL_SECONDS", "nan", "use a finite number"),
        ("OPENTICKET_HOLD_TTL_SECONDS", "inf", "use a finite number"),
        ("OPENTICKET_HOLD_TTL_SECONDS", "-5", "use a number above 0"),
        ("OPENTICKET_HOLD_TTL_SECONDS", "two minutes", "use a number"),
        ("OPENTICKET_RATE_LIMIT_PER_IP", "-1", "use 0 or a number above"),
        ("OPENTICKET_SAGA_INLINE", "maybe", "use true or false"),
        ("OPENTICKET_NATS_REPLICAS", "7", "use 1 to 5"),
        ("OPENTICKET_DATABASE_URL", "mysql://root@127.0.0.1/shop", "postgresql:// or postgres://"),
        ("OPENTICKET_DATABASE_SCHEMA", "Tickets-2024", "lower-case letters"),
        ("OPENTICKET_REDIS_URL", "http://127.0.0.1:6379", "redis://, rediss:// or unix://"),
        ("OPENTICKET_NATS_URL", "amqp://127.0.0.1", "nats://, tls://, ws:// or wss://"),
        ("OPENTICKET_NATS_URL", "nats://a:4222,nats://b:4222", "use one server's URL"),
        ("OPENTICKET_NATS_PREFIX", "my.prefix", "letters, digits"),
        ("OPENTICKET_PUBLIC_URL", "tickets.example.com", "https:// or http://"),
        ("OPENTICKET_STRIPE_API_BASE", "ftp://127.0.0.1", "https:// or http://"),
        ("OPENTICKET_LINEPAY_API_BASE", "sandbox-api-pay.line.me", "https:// or http://"),
        ("OPENTICKET_JWT_PRIVATE_KEY_FILE", "/no/such/key.pem", "no such file"),
        ("OPENTICKET_CORS_ORIGINS", "https://tickets.example.com/", "is not an origin"),
        ("OPENTICKET_CORS_ORIGINS", "tickets.example.com", "is not an origin"),
        ("OPENTICKET_TRUSTED_PROXIES", "10.0.0.0/8,lb.internal", "'lb.internal' is not an IP"),
        ("OPENTICKET_TOKEN_TTL_SECONDS", "0.5", "use 1 second or more"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable_the_value_and_what_to_use(
    variable: str, value: str, advice: str
) -> None:
    problem = only_problem({variable: value})
    assert problem.startswith(f"{variable}=")
    assert value in problem
    assert advice in problem
    assert "\n" not in problem


@pytest.mark.parametrize(
    ("env", "needed"),
    [
        ({"OPENTICKET_LOCK_STORE": "redis"}, "OPENTICKET_REDIS_URL"),
        ({"OPENTICKET_LOCK_STORE": "nats"}, "OPENTICKET_NATS_URL"),
        ({"OPENTICKET_SEAT_ACTORS": "workers"}, "OPENTICKET_NATS_URL"),
        ({"OPENTICKET_PERSISTENCE": "postgres"}, "OPENTICKET_DATABASE_URL"),
        ({"OPENTICKET_STRIPE_API_KEY": "sk_test_1"}, "OPENTICKET_STRIPE_WEBHOOK_SECRET"),
        ({"OPENTICKET_LINEPAY_CHANNEL_ID": "1656"}, "OPENTICKET_LINEPAY_CHANNEL_SECRET"),
    ],
)
def test_a_setting_without_the_one_it_needs_names_both(env: dict[str, str], needed: str) -> None:
    problem = only_problem(env)
    assert next(iter(env)) in problem
    assert needed in problem


def test_every_problem_is_reported_at_once() -> None:
    found = problems(
        {
            "OPENTICKET_LOCK_STORE": "foo",
            "OPENTICKET_PARTITIONS": "1.5",
            "OPENTICKET_SWEEP_INTERVAL_SECONDS": "-1",
            "OPENTICKET_DATABASE_URL": "mysql://root@127.0.0.1/shop",
            "OPENTICKET_SEAT_ACTORS": "workers",
        }
    )
    named = {problem.split("=")[0] for problem in found}
    assert named == {
        "OPENTICKET_LOCK_STORE",
        "OPENTICKET_PARTITIONS",
        "OPENTICKET_SWEEP_INTERVAL_SECONDS",
        "OPENTICKET_DATABASE_URL",
        "OPENTICKET_SEAT_ACTORS",
    }


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OPENTICKET_JWT_SECRET", "too-short-secret"),
        ("OPENTICKET_DEMO_PASSWORD", "pw"),
    ],
)
def test_a_secret_s_value_is_never_shown(variable: str, value: str) -> None:
    problem = only_problem({variable: value})
    assert variable in problem
    assert value not in problem


def test_a_url_s_password_is_never_shown() -> None:
    problem = only_problem({"OPENTICKET_DATABASE_URL": "mysql://shop:hunter22@db.internal/shop"})
    assert "hunter22" not in problem
    assert "db.internal" in problem


def test_good_values_are_read_with_their_types(tmp_path: Path) -> None:
    key = tmp_path / "signing.pem"
    key.write_text("not checked here: serve loads it")
    settings = Settings.from_env(
        {
            "OPENTICKET_PARTITIONS": "8",
            "OPENTICKET_HOLD_TTL_SECONDS": "90",
            "OPENTICKET_LOCK_STORE": "Redis",
            "OPENTICKET_REDIS_URL": "rediss://:pw@cache.internal:6380/1",
            "OPENTICKET_NATS_URL": "tls://nats.internal:4222",
            "OPENTICKET_DATABASE_URL": "postgres://app@db.internal/tickets",
            "OPENTICKET_SAGA_INLINE": "off",
            "OPENTICKET_CORS_ORIGINS": "https://tickets.example.com, http://localhost:3000",
            "OPENTICKET_TRUSTED_PROXIES": "10.0.0.0/8,192.168.1.7,fd00::/8,10.1.2.3/16",
            "OPENTICKET_JWT_PRIVATE_KEY_FILE": str(key),
            "OPENTICKET_JWT_SECRET": "",  # empty means unset
        }
    )
    assert (settings.partitions, settings.hold_ttl_seconds) == (8, 90.0)
    assert settings.lock_store is LockStoreMode.REDIS
    assert settings.saga_inline is False
    assert settings.cors_origins == ("https://tickets.example.com", "http://localhost:3000")
    assert len(settings.trusted_proxies) == 4
    assert settings.jwt_secret == ""


def test_the_container_gets_plain_strings_for_the_modes() -> None:
    config = Settings(lock_store="redis", redis_url="redis://127.0.0.1:6379/0").as_config()
    for name in ("lock_store", "persistence", "seat_actors", "profile"):
        assert type(config[name]) is str, name
    assert config["lock_store"] == "redis"
    assert config["persistence"] == "memory"


def test_settings_made_in_code_are_checked_too() -> None:
    with pytest.raises(SettingsError) as refused:
        Settings(hold_ttl_seconds=float("nan"), partitions=0)
    assert len(refused.value.problems) == 2
    with pytest.raises(SettingsError, match="OPENTICKET_LOCK_STORE=disk"):
        Settings(lock_store="disk")


def test_an_unknown_variable_is_reported_with_the_closest_known_name() -> None:
    (warning,) = unknown_variables({"OPENTICKET_LOCKSTORE": "redis", "HOME": "/root"})
    assert warning.startswith("OPENTICKET_LOCKSTORE is not a setting")
    assert "did you mean OPENTICKET_LOCK_STORE?" in warning
    (far,) = unknown_variables({"OPENTICKET_COLOUR": "blue"})
    assert "openticket --help lists the settings" in far


def test_the_test_suite_s_own_variables_are_not_reported() -> None:
    env = {
        "OPENTICKET_TEST_DATABASE_URL": "postgresql://postgres@127.0.0.1/test",
        "OPENTICKET_E2E_STORAGE": "production",
        "OPENTICKET_PARTITIONS": "4",
    }
    assert unknown_variables(env) == []


def test_every_setting_has_a_group_and_help_and_secrets_show_no_default() -> None:
    fields = attrs.fields(Settings)
    assert all(isinstance(f.metadata.get("group"), Group) for f in fields)
    assert all(f.metadata.get("help") for f in fields)
    listed = [row for _, rows in grouped() for row in rows]
    assert sorted(listed) == sorted(describe())
    defaults = {variable: default for variable, default, _ in describe()}
    assert defaults["OPENTICKET_PARTITIONS"] == "16"
    assert defaults["OPENTICKET_DEMO_PASSWORD"] == ""
    assert defaults["OPENTICKET_SAGA_INLINE"] == "true"
