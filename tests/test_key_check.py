"""DATA_KEY against what is stored: `data check`, /readyz, the server's start, and dumps made 0600."""
from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, make_url, update

from app import create_app
from edge import DataKeyRefused, check_data_key_at_start
from models import Method
from settings import load
from tests import personas
from tests.conftest import TEST_DATA_KEY, run_in
from tests.helpers import response_json

ROOT = Path(__file__).resolve().parent.parent
NEW = Fernet.generate_key().decode()
RANDOM = Fernet.generate_key().decode()


MADE: list = []


def new_app(config: dict):
    """create_app, its engine disposed after the test (no pooled SQLite connection is left for the
    garbage collector: Python 3.13 reports that as a ResourceWarning, which fails the test)."""
    app = create_app(config)
    MADE.append(app)
    return app


@pytest.fixture(autouse=True)
def _dispose_apps():
    yield
    while MADE:
        MADE.pop().extensions["mfa"].engine.dispose()


def data_check(app_config, data_key, *args):
    app = new_app({**app_config, "DATA_KEY": data_key})  # no check here: commands still run
    return app.test_cli_runner().invoke(args=["data", "check", *args])


def add_app_seed(run, user, created_at=None, method_id=None, secret="JBSWY3DPEHPK3PXP"):
    """An authenticator app for `user` (written straight in: only its encrypted seed matters here)."""
    def add(db, svc):
        method = Method(user_id=user.id, type="totp", label="App", totp_secret_encrypted=svc.vault.encrypt(secret),
                        verified_at=svc.clock.now(), created_at=created_at or svc.clock.now(), is_default=False,
                        **({"id": method_id} if method_id else {}))
        db.add(method)
        db.flush()
        return method.id
    return run(add)


@pytest.fixture
def stored(run, clock):
    """alice's mobile (a text and a call method: two phone numbers) and bob's authenticator app."""
    personas.alice(run)
    add_app_seed(run, personas.bob(run))


# --- `flask --app app data check`: the backup check -------------------------------------------


def test_data_check_decrypts_a_totp_seed_and_the_phone_numbers_with_the_right_key(app_config, stored):
    result = data_check(app_config, TEST_DATA_KEY)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "TOTP seeds: 1 of 1 decrypted; phone numbers: 2 of 2 decrypted."


def test_data_check_with_a_random_key_fails_with_one_line_naming_data_key(app_config, stored):
    result = data_check(app_config, RANDOM)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.output.splitlines()[-1] == (
        "Error: DATA_KEY cannot decrypt stored secrets (1 of 1 sampled TOTP seeds, 2 of 2 phone numbers): "
        "DATA_KEY is not the key they were written with, or lacks an older key; list every key still in use, "
        "newest first (see docs/backups.md).")


def test_data_check_without_the_old_key_before_rotate_key_names_the_missing_older_key(app_config, stored, clock):
    app = new_app({**app_config, "DATA_KEY": f"{NEW},{TEST_DATA_KEY}"})  # step 1 of a rotation
    clock.advance(60)

    def under_new(use):
        return run_in(app, use)

    add_app_seed(under_new, personas.carol(under_new))
    both = data_check(app_config, f"{NEW},{TEST_DATA_KEY}")
    assert both.exit_code == 0, both.output
    assert "TOTP seeds: 2 of 2 decrypted (1 under an older key)" in both.output
    assert "keep it in DATA_KEY until `flask --app app data rotate-key` has run" in both.output

    new_only = data_check(app_config, NEW)
    assert new_only.exit_code == 1
    assert new_only.output.splitlines()[-1] == (
        "Error: DATA_KEY cannot decrypt stored secrets (1 of 2 sampled TOTP seeds, 2 of 2 phone numbers): "
        "an older key is missing from DATA_KEY; add it after the newest (see docs/backups.md).")

    rotated = app.test_cli_runner().invoke(args=["data", "rotate-key"])
    assert rotated.exit_code == 0, rotated.output
    after = data_check(app_config, NEW)
    assert after.exit_code == 0, after.output
    assert after.output.splitlines()[0] == "TOTP seeds: 2 of 2 decrypted; phone numbers: 2 of 2 decrypted."


def test_data_check_of_an_empty_database_says_there_is_nothing_to_check(app_config):
    result = data_check(app_config, RANDOM)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "nothing encrypted to check.",
        "The database holds no encrypted secrets yet: nothing shows whether DATA_KEY is the right one."]


def many_seeds_and_one_under_an_old_key(run, clock, odd_id):
    """Twelve app seeds a minute apart under the newest key, and one under a key since dropped
    written mid-way (with the id `odd_id`): what the sample finds depends on where it sits."""
    user = personas.bob(run)
    start = clock.now()
    for i in range(12):
        add_app_seed(run, user, created_at=start + timedelta(minutes=i))
    old = Fernet(RANDOM).encrypt(b"JBSWY3DPEHPK3PXP")
    add_app_seed(run, user, created_at=start + timedelta(minutes=6), method_id=odd_id)
    run(lambda db, svc: db.execute(update(Method).where(Method.id == odd_id).values(totp_secret_encrypted=old)))


def test_the_sample_reads_the_highest_ids_a_rotation_stopped_half_way_leaves_under_the_old_key(
        app_config, run, clock):
    many_seeds_and_one_under_an_old_key(run, clock, "f" * 32)  # rotate-key goes in id order
    result = data_check(app_config, TEST_DATA_KEY)
    assert result.exit_code == 1
    assert re.search(r"\(1 of [789] sampled TOTP seeds\): an older key is missing", result.output), result.output


def test_data_check_all_decrypts_every_row_where_the_sample_would_miss_one(app_config, run, clock):
    many_seeds_and_one_under_an_old_key(run, clock, "0" * 32)  # neither oldest, newest nor highest id
    assert data_check(app_config, TEST_DATA_KEY).exit_code == 0
    everything = data_check(app_config, TEST_DATA_KEY, "--all")
    assert everything.exit_code == 1
    assert "(1 of 13 TOTP seeds)" in everything.output


# --- /readyz ---------------------------------------------------------------------------------


def test_readyz_answers_503_naming_data_key_when_a_stored_secret_does_not_decrypt(app_config, stored):
    response = new_app({**app_config, "DATA_KEY": RANDOM}).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json == {"status": "unavailable", "failed": ["data_key"],
                             "checks": {"database": "ok", "data_key": "unavailable: stored secrets do not decrypt"}}


def test_readyz_decrypts_its_sample_at_most_once_a_minute(app, client, run, clock):
    assert client.get("/readyz").json["checks"]["data_key"] == "ok"
    user = personas.alice(run)
    run(lambda db, svc: db.execute(update(Method).where(Method.user_id == user.id)
                                   .values(phone_encrypted=Fernet(RANDOM).encrypt(b"+447400111222"))))
    clock.advance(59)
    assert client.get("/readyz").status_code == 200  # the last minute's answer
    clock.advance(1)
    assert client.get("/readyz").json["failed"] == ["data_key"]


def test_readyz_reports_a_database_without_its_tables_as_database_not_data_key(app_config, tmp_path):
    empty = tmp_path / "empty.sqlite3"
    engine = create_engine(f"sqlite:///{empty}")
    engine.connect().close()  # answers SELECT 1, has no tables
    engine.dispose()
    response = new_app({**app_config, "DATABASE_URL": f"sqlite:///{empty}"}).test_client().get("/readyz")
    body = response_json(response)
    assert response.status_code == 503
    assert body["failed"] == ["database"]
    assert "data_key" not in body["checks"]


# --- the server's start ------------------------------------------------------------------------


def settings_for(app_config, **overrides):
    values = {k: v for k, v in {**app_config, **overrides}.items() if isinstance(v, str)}
    return load(values, Path(app_config["INSTANCE_PATH"]))


def test_the_start_up_check_stops_with_one_line_naming_data_key(app_config, stored):
    with pytest.raises(DataKeyRefused) as refused:
        check_data_key_at_start(settings_for(app_config, DATA_KEY=RANDOM))
    assert str(refused.value.code).startswith("DATA_KEY cannot decrypt stored secrets (1 of 1 TOTP seeds")
    check_data_key_at_start(settings_for(app_config))  # the right key: no stop


def test_the_start_up_check_reads_every_secret_not_only_the_sample(app_config, run, clock):
    many_seeds_and_one_under_an_old_key(run, clock, "0" * 32)  # the sample (and /readyz) miss this one
    with pytest.raises(DataKeyRefused) as refused:
        check_data_key_at_start(settings_for(app_config))
    assert str(refused.value.code).startswith(
        "DATA_KEY cannot decrypt stored secrets (1 of 13 TOTP seeds): an older key is missing")


def test_a_database_down_at_start_does_not_stop_the_server(app_config, tmp_path):
    warned = []
    down = f"sqlite:///{tmp_path}/no/such/dir/db.sqlite3"
    check_data_key_at_start(settings_for(app_config, DATABASE_URL=down), warn=lambda *a: warned.append(a[0] % a[1:]))
    assert warned == ["DATA_KEY not checked at start: the database cannot be read (OperationalError); "
                      "/readyz checks it once it can"]


def test_gunicorn_stops_before_forking_a_worker_with_one_line_naming_data_key(app_config, stored, tmp_path):
    env = {**os.environ, **{k: v for k, v in app_config.items() if isinstance(v, str)}, "DATA_KEY": RANDOM}
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "python:ops.gunicorn_config",
                                "--bind", "127.0.0.1:0", "--no-control-socket", "app:create_app()"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait()
    assert process.returncode == 1
    assert "Traceback" not in err
    assert "Booting worker" not in err + out
    refusals = [line for line in err.splitlines() if "DATA_KEY cannot decrypt stored secrets" in line]
    assert refusals == [line for line in err.splitlines() if "DATA_KEY" in line]
    assert len(refusals) == 1 and refusals[0].startswith("DATA_KEY cannot decrypt stored secrets (1 of 1 TOTP")


# --- backups: the documented dump is readable by its owner only ---------------------------------


def documented_block(starting: str) -> str:
    """The lines of docs/backups.md from the first that starts with `starting` to the end of its block."""
    text = (ROOT / "docs" / "backups.md").read_text()
    found = re.search(rf"^ *({re.escape(starting)}.*?)\n *```", text, re.MULTILINE | re.DOTALL)
    assert found, f"docs/backups.md shows a block starting {starting!r}"
    return found.group(1)


def postgresql_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url.startswith("postgresql://"):
        pytest.skip("needs TEST_DATABASE_URL=postgresql://… (backups are of a PostgreSQL database)")
    for tool in ("pg_dump", "pg_restore", "createdb", "dropdb"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} (apt-get install postgresql-client)")
    return url


def dump(url: str, backups: Path) -> Path:
    """The documented dump command, into `backups` instead of /var/backups/mfa."""
    command = documented_block("(umask 077 && ").replace("/var/backups/mfa", str(backups))
    subprocess.run(["bash", "-c", command], check=True, env={**os.environ, "DATABASE_URL": url},
                   timeout=120, umask=0o022)
    dumps = list(backups.glob("mfa-*.dump"))
    assert len(dumps) == 1 and dumps[0].stat().st_size > 0
    return dumps[0]


def test_the_documented_dump_command_leaves_a_file_only_its_owner_can_read(tmp_path, stored):
    made = dump(postgresql_url(), tmp_path / "backups")
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
    assert stat.S_IMODE(made.parent.stat().st_mode) == 0o700


def test_the_documented_restore_check_decrypts_the_restored_secrets_and_fails_with_a_random_key(
        app_config, tmp_path, stored):
    url = postgresql_url()
    made = dump(url, tmp_path / "backups")
    server = make_url(url)
    scratch = f"{server.database}_restore_check"
    libpq = {"PGHOST": server.host or "", "PGPORT": str(server.port or 5432), "PGUSER": server.username or "",
             **({"PGPASSWORD": server.password} if server.password else {})}
    steps = (documented_block("createdb mfa_restore_check").replace("mfa_restore_check", scratch)
             .replace("/var/backups/mfa/mfa-2026-12-05.dump", str(made)).splitlines())
    scratch_url = f"DATABASE_URL=postgresql:///{scratch}"
    assert [step.split()[0] for step in steps] == ["createdb", "pg_restore", scratch_url, scratch_url, "dropdb"]
    restore, check, drop = steps[:3], steps[3], steps[4]
    assert check.endswith("flask --app app data check")
    service = {k: v for k, v in app_config.items() if isinstance(v, str) and k != "DATABASE_URL"}
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # this venv's flask
    env = {**os.environ, **service, **libpq, "PATH": path}
    subprocess.run(["dropdb", "--if-exists", scratch], env=env, check=True, timeout=60)
    try:
        for step in restore:
            subprocess.run(["bash", "-c", step], env=env, cwd=ROOT, check=True, timeout=120)
        right = subprocess.run(["bash", "-c", check], env=env, cwd=ROOT, capture_output=True, text=True,
                               timeout=120)
        assert (right.returncode, right.stdout.splitlines()[:1]) == (
            0, ["TOTP seeds: 1 of 1 decrypted; phone numbers: 2 of 2 decrypted."]), right.stderr
        wrong = subprocess.run(["bash", "-c", check], env={**env, "DATA_KEY": RANDOM}, cwd=ROOT,
                               capture_output=True, text=True, timeout=120)
        assert wrong.returncode == 1
        assert wrong.stderr.strip().startswith("Error: DATA_KEY cannot decrypt stored secrets (1 of 1 sampled")
    finally:
        subprocess.run(["bash", "-c", drop], env=env, check=True, timeout=60)
