"""`flask --app app audit show USERNAME`: one person's trail, one line per event, oldest first."""
from __future__ import annotations

import pytest

from mfa import audit
from tests.conftest import PASSWORD
from tests.personas import ALICE


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=list(args))


def event(run, clock, name, outcome, user, **kwargs):
    run(lambda db, svc: audit.record(db, svc.clock, name, outcome, user=user, **kwargs))


@pytest.fixture
def trail(run, clock, alice, bob):
    """alice: a call refused, then approved a day later, then a sign-out; bob's events in between."""
    clock.advance(hours=1)
    event(run, clock, "challenge_refused", "rate_limited", alice, method="Mobile ending 222", reason="unanswered_calls",
          source_ip="198.51.100.7", detail="3 unanswered calls in 24 hours")
    event(run, clock, "sign_in", "failed", bob, reason="wrong_password", source_ip="203.0.113.9")
    clock.advance(days=1)
    event(run, clock, "code_check", "approved", alice, method="Mobile ending 222", reason="verified",
          source_ip="198.51.100.7")
    clock.advance(minutes=5)
    event(run, clock, "signed_out_everywhere", "ok", alice)
    return alice


def lines_of(result) -> list[str]:
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_audit_show_prints_the_persons_events_oldest_first_one_line_each(cli, trail):
    lines = lines_of(cli("audit", "show", "alice"))

    mine = [line for line in lines if "198.51.100.7" in line or "signed_out_everywhere" in line]
    assert [line.split()[2] for line in mine] == ["challenge_refused", "code_check", "signed_out_everywhere"]
    assert mine[0].split() == ["2026-11-28", "10:00:00Z", "challenge_refused", "rate_limited", "Mobile", "ending",
                               "222", "198.51.100.7", "unanswered_calls", "(3", "unanswered", "calls", "in", "24",
                               "hours)"]
    assert mine[2].split()[2:] == ["signed_out_everywhere", "ok", "-", "-", "-"]
    assert not any("wrong_password" in line or "203.0.113.9" in line for line in lines)  # bob's, not hers
    assert ALICE not in "".join(lines) and ALICE[-6:] not in "".join(lines)  # numbers only as stored: masked


def test_since_takes_a_date_or_an_iso_time(cli, trail):
    from_date = lines_of(cli("audit", "show", "alice", "--since", "2026-11-29"))
    assert [line.split()[2] for line in from_date] == ["code_check", "signed_out_everywhere"]
    from_time = lines_of(cli("audit", "show", "alice", "--since", "2026-11-29T10:03:00+00:00"))
    assert [line.split()[2] for line in from_time] == ["signed_out_everywhere"]
    in_paris = lines_of(cli("audit", "show", "alice", "--since", "2026-11-29T11:05+01:00"))
    assert [line.split()[2] for line in in_paris] == ["signed_out_everywhere"]
    later = lines_of(cli("audit", "show", "alice", "--since", "2026-12-01"))
    assert later == ["no audit events since 2026-12-01 00:00 UTC"]


def test_limit_shows_the_latest_events_and_says_how_many_earlier_ones_are_left_out(cli, trail):
    shown = lines_of(cli("audit", "show", "alice", "--since", "2026-11-28T10:00Z", "--limit", "2"))
    assert shown[0] == "(1 earlier event(s) not shown: use --since or --limit)"
    assert [line.split()[2] for line in shown[1:]] == ["code_check", "signed_out_everywhere"]


def test_an_unknown_user_is_one_line_and_exit_1(cli, trail):
    result = cli("audit", "show", "nobody")
    assert result.exit_code == 1
    assert result.output.strip() == "Error: no such user: nobody"


def test_an_unknown_name_that_sign_ins_used_says_how_its_events_are_kept(cli, api, trail):
    refused = api.post("/authentications", {"username": "mallory", "password": PASSWORD})
    assert refused.status_code == 401

    result = cli("audit", "show", "Mallory")

    assert result.exit_code == 1
    assert result.output.startswith("Error: no such user: Mallory (1 event(s) name it, kept as unknown user ")
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("since", ["yesterday", "2026-13-01", "29/11/2026", ""])
def test_a_malformed_since_is_one_line(cli, trail, since):
    result = cli("audit", "show", "alice", "--since", since)
    assert result.exit_code != 0
    assert "--since must be a date (YYYY-MM-DD) or an ISO 8601 time" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("since", ["0001-01-01T00:00+01:00", "9999-12-31T23:59-01:00"])
def test_a_since_outside_the_years_utc_can_hold_is_one_line(cli, trail, since):
    result = cli("audit", "show", "alice", "--since", since)
    assert result.exit_code != 0
    assert "--since must be a time between the years 1 and 9999 in UTC" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
