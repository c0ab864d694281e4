"""Benchmark data, made through the domain (mfa.accounts, mfa.api_keys, registration and
sign-in use cases), never by hand-written SQL.

Calls and texts made while seeding go to SeedTelephony, which hands out ids and rings
nobody: the server under test never sees them. Sign-ins and challenges expire (a call's
challenge after 2 minutes), so each scenario seeds its own just before it runs.
"""
from __future__ import annotations

import dataclasses
import time
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from argon2 import PasswordHasher

from app import create_app
from mfa import accounts, api_keys, authentications, calls, challenges, methods, phone_registration
from mfa.passwords import Passwords
from mfa.unit_of_work import Transactions, use_case

PASSWORD = "bench password, not secret"
SEED_IP = "127.0.0.1"
# Cheap argon2 for the many accounts whose passwords the benchmark never sends to the server.
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class SeedTelephony:
    """Stands in for Twilio while seeding: returns ids, reaches nobody."""

    def send_code_sms(self, to: str, code: str, language: str) -> str:
        return "SM" + uuid.uuid4().hex

    def send_notice_sms(self, to: str, change: str, language: str, last_digits: str | None) -> str:
        return "SM" + uuid.uuid4().hex

    def place_verification_call(self, to: str, challenge_id: str) -> str:
        return "CA" + uuid.uuid4().hex

    def end_call(self, call_sid: str) -> None:
        pass


@dataclass
class Account:
    username: str
    user_id: str
    number: str
    totp_secret: str
    voice_method_id: str
    sms_method_id: str


def number_for(index: int) -> str:
    return f"+447400{index:06d}"  # a valid UK mobile format; only stand-ins ever "dial" it


class Seeder:
    def __init__(self, server_env: dict):
        config = {k: v for k, v in server_env.items() if k not in ("PROMETHEUS_MULTIPROC_DIR", "LOG_FORMAT")}
        self.app = create_app(config)
        rt = self.app.extensions["mfa"]
        self.sessions = rt.sessions
        self.cheap = dataclasses.replace(rt.services, telephony=SeedTelephony(), passwords=Passwords(CHEAP))
        self.real = dataclasses.replace(self.cheap, passwords=Passwords())  # production argon2 parameters
        self.api_key_id: str | None = None  # seeded sign-ins belong to the bench's key (api_key)

    def _run(self, svc, use):
        with self.sessions() as db, use_case(db):
            return use(db, svc)

    def api_key(self, name: str) -> str:
        key = self._run(self.cheap, lambda db, svc: api_keys.create(db, svc, name))
        self.api_key_id = self._run(self.cheap, lambda db, svc: _key_id(db, key))
        return key

    def accounts(self, prefix: str, indexes: range, *, real_passwords: bool = False) -> list[Account]:
        svc = self.real if real_passwords else self.cheap
        return [self._run(svc, lambda db, s, i=i: self._account(db, s, f"{prefix}-{i}", number_for(i)))
                for i in indexes]

    def _account(self, db, svc, username: str, number: str) -> Account:
        """An administrator in England with a verified mobile (calls and texts) and an app."""
        user = accounts.create_user(db, svc, username, PASSWORD, role="admin", region="england")
        auth = authentications.start(db, svc, username, PASSWORD, SEED_IP)
        registration = phone_registration.register_phone(Transactions(db), svc, auth.id, number, "mobile", "voice",
                                                         SEED_IP)
        challenge = registration.challenge
        calls.answered(db, svc, challenge.id, challenge.provider_sid, None)
        calls.keys_pressed(db, svc, challenge.id, challenge.provider_sid, "#")
        app_method, uri = methods.enrol_totp(db, svc, user, SEED_IP)
        methods.activate(db, svc, app_method, SEED_IP)
        by_type = {m.type: m.id for m in user.verified_methods()}
        secret = parse_qs(urlsplit(uri).query)["secret"][0]
        return Account(username, user.id, number, secret, by_type["voice"], by_type["sms"])

    def sign_ins(self, people: list[Account]) -> list[str]:
        """A fresh sign-in waiting for its second factor (mfa_required) for each account."""
        return [self._run(self.cheap, lambda db, svc, a=a: authentications.start(
            db, svc, a.username, PASSWORD, SEED_IP, api_key_id=self.api_key_id).id) for a in people]

    def challenges(self, people: list[Account], kind: str) -> list[tuple[str, str]]:
        """A fresh sign-in with a pending call or text for each account: (challenge id, provider sid)."""

        def one(db, svc, account: Account):
            auth = authentications.start(db, svc, account.username, PASSWORD, SEED_IP)
            method_id = account.voice_method_id if kind == "voice" else account.sms_method_id
            challenge = challenges.start_challenge(Transactions(db), svc, auth.id, method_id, SEED_IP)
            return challenge.id, challenge.provider_sid

        return [self._run(self.cheap, lambda db, svc, a=a: one(db, svc, a)) for a in people]

    def close(self) -> None:
        self.app.extensions["mfa"].engine.dispose()


# --- seeding accounts in parallel: argon2 and the registration flow are CPU-bound ---------

_seeder: Seeder | None = None


def _key_id(db, key: str) -> str:
    found = api_keys.authenticate(db, key)
    assert found is not None, "a key just created authenticates"
    return found.id


def _start_worker(server_env: dict) -> None:
    global _seeder
    _seeder = Seeder(server_env)


def _seed_slice(job: tuple[str, range, bool]) -> list[Account]:
    prefix, indexes, real_passwords = job
    assert _seeder is not None, "each pool worker starts with _start_worker"
    return _seeder.accounts(prefix, indexes, real_passwords=real_passwords)


def accounts_in_parallel(server_env: dict, prefix: str, indexes: range, *, real_passwords: bool = False,
                         processes: int = 2) -> list[Account]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    step = max(1, len(indexes) // (processes * 8))
    jobs = [(prefix, indexes[i:i + step], real_passwords) for i in range(0, len(indexes), step)]
    context = multiprocessing.get_context("spawn")  # the benchmark process has threads: do not fork it
    with ProcessPoolExecutor(processes, mp_context=context, initializer=_start_worker,
                             initargs=(server_env,)) as pool:
        return [account for part in pool.map(_seed_slice, jobs) for account in part]


def timed(what: str, make):
    started = time.perf_counter()
    value = make()
    print(f"  seeded {what} in {time.perf_counter() - started:.1f} s", flush=True)
    return value
