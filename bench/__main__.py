"""`python -m bench`: the benchmark suite, one command. See docs/performance.md.

Starts the server under gunicorn (as the Procfile does) on a fresh SQLite file or a
PostgreSQL database made for it, seeds accounts through the domain, runs each scenario
from a loopback load generator, and prints requests per second, p50/p99 latency, errors,
peak worker memory and the ratios to two references: the in-stack reference endpoint
(ops/reference.py, enabled with BENCH_REFERENCE_ENDPOINT=true on the same gunicorn) and
the bare reference (bench/bare_app.py: the same Flask, SQLAlchemy and gunicorn settings
without the project's middleware, under its own gunicorn in the same run). Everything it
starts, it stops. For each request's own CPU and SQL statements, one at a time, see
`python -m bench.cpu`.
"""
from __future__ import annotations

import argparse
import logging
import secrets
import sys
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet

from bench import e2e, report, scenarios
from bench.database import prepare
from bench.profile import Profiler
from bench.report import Row
from bench.seed import Seeder, accounts_in_parallel, timed
from bench.server import Gunicorn, free_port
from settings import SIMULATOR_ACCOUNT_SID

SCENARIOS = ("passwords", "poll", "totp", "voice", "sms", "e2e")


def arguments(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    p.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/mfa_bench",
                   help="PostgreSQL database to use (its name must contain 'bench': its schema is dropped)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    p.add_argument("--threads", type=int, default=4, help="threads per worker (default 4, as the Procfile)")
    p.add_argument("--concurrency", type=int, default=32, help="connections per scenario (default 32)")
    p.add_argument("--duration", type=float, default=10.0, help="longest a scenario runs, seconds (default 10)")
    p.add_argument("--requests", type=int, default=2000, help="most requests per scenario; also the number of "
                   "seeded accounts (default 2000)")
    p.add_argument("--voice-rate", type=float, default=100.0, help="requests per second offered to each voice "
                   "webhook in its steady (open-loop) run, for latency at a given load (default 100; 0: skip)")
    p.add_argument("--people", type=int, default=200, help="accounts with production argon2 passwords, and "
                   "concurrent sign-ins end to end (default 200)")
    p.add_argument("--only", default=",".join(SCENARIOS), help=f"comma list of {', '.join(SCENARIOS)}")
    p.add_argument("--redis", default="", help="REDIS_URL for the server (e.g. redis://127.0.0.1:6379/0)")
    p.add_argument("--profile", action="store_true", help="sample the workers with py-spy during each scenario "
                   "and print where their time went (stacks kept in the work directory)")
    return p.parse_args(argv)


def argon2_cost() -> str:
    from argon2 import PasswordHasher

    from mfa.passwords import DEFAULT_HASHER

    hasher = PasswordHasher(**DEFAULT_HASHER)  # what the server uses
    digest = hasher.hash("bench password, not secret")
    timings = {}
    for name, work in (("hash", lambda: hasher.hash("bench password, not secret")),
                       ("verify", lambda: hasher.verify(digest, "bench password, not secret"))):
        started = time.perf_counter()
        for _ in range(10):
            work()
        timings[name] = (time.perf_counter() - started) / 10 * 1000
    return (f"argon2id alone (t={hasher.time_cost}, m={hasher.memory_cost // 1024} MiB, p={hasher.parallelism}), "
            f"one at a time in this process: hash {timings['hash']:.0f} ms, verify {timings['verify']:.0f} ms")


def main(argv=None) -> int:
    args = arguments(argv)
    chosen = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="mfa-bench-"))
    database_url, database_label = prepare(args.db, args.database_url, work)
    print(f"Machine: {report.machine(database_label)}")
    print(f"gunicorn: {args.workers} workers x {args.threads} threads; {args.concurrency} connections per scenario; "
          f"each scenario at most {args.requests} requests or {args.duration:.0f} s. Work files: {work}")
    print(argon2_cost(), flush=True)

    from standin import StandinServer, create_standin_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the stand-in's request log
    port = free_port()
    env = {"MFA_ENV": "development", "DATABASE_URL": database_url, "SECRET_KEY": "bench-secret-key",
           "DATA_KEY": Fernet.generate_key().decode(), "INSTANCE_PATH": str(work / "instance"),
           "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", "TELEPHONY_PROVIDER": "simulator",
           "BENCH_REFERENCE_ENDPOINT": "true", "LOG_FORMAT": "json",
           "PROMETHEUS_MULTIPROC_DIR": str(work / "prometheus"), "REDIS_URL": args.redis,
           "TWILIO_AUTH_TOKEN": secrets.token_urlsafe(32)}  # the server's and the stand-in's
    people_needed = args.people if chosen & {"passwords", "e2e"} else 0
    needed = args.requests + int(args.voice_rate * args.duration)
    accounts = timed(f"{needed} accounts (phone and app, through the registration use cases)",
                     lambda: accounts_in_parallel(env, "bench", range(needed)))
    people = timed(f"{people_needed} accounts with production argon2 passwords",
                   lambda: accounts_in_parallel(env, "person", range(100000, 100000 + people_needed),
                                                real_passwords=True))
    seeder = Seeder(env)
    api_key = seeder.api_key("bench")

    standin = StandinServer(create_standin_app(SIMULATOR_ACCOUNT_SID, env["TWILIO_AUTH_TOKEN"], realtime=False)).start()
    env["TWILIO_API_BASE_URL"] = standin.url
    (work / "prometheus").mkdir()
    server = Gunicorn(env, workers=args.workers, threads=args.threads, port=port, log_path=work / "server.log")
    bare = Gunicorn(env, workers=args.workers, threads=args.threads, log_path=work / "bare.log",
                    app_spec="bench.bare_app:create_app()")
    rows: list[Row] = []
    try:
        bare.start()
        server.start()
        print(f"gunicorn ready (GET /readyz answered 200) {server.startup_seconds:.2f} s after it was started; "
              f"worker RSS at rest: {fmt_rss(server.worker_rss_mb())}", flush=True)
        ctx = scenarios.Context(port, env["PUBLIC_BASE_URL"], api_key, seeder, accounts, people,
                                args.concurrency, args.duration, args.requests, args.voice_rate,
                                auth_token=env["TWILIO_AUTH_TOKEN"], bare_port=bare.port)
        scenarios.warm_up(ctx)

        profiler = Profiler(work / "profiles") if args.profile else None

        def measure(label: str, run, **targets) -> None:
            server.sample_peaks()
            if profiler:
                profiler.start(label, server.worker_pids())
            results = run()
            peaks = server.take_peaks()
            if profiler:
                print(f"  profile of {label}:\n{profiler.stop()}", flush=True)
            for result in results if isinstance(results, tuple) else (results,):
                rows.append(Row(result, peak_rss=peaks, **targets))
                print(f"  {result.name}: {result.rps:.0f} req/s, p99 {result.percentile(99) * 1000:.1f} ms, "
                      f"{result.errors} errors", flush=True)

        measure("bare", lambda: scenarios.bare_reference(ctx), comparable=True)
        measure("reference", lambda: scenarios.reference(ctx))
        if "poll" in chosen:
            measure("poll", lambda: scenarios.polls(ctx), ratio_target=True)
        if "passwords" in chosen:
            measure("passwords", lambda: scenarios.passwords(ctx))
        if "totp" in chosen:
            measure("totp", lambda: scenarios.totp_checks(ctx), ratio_target=True)
        if "voice" in chosen:
            measure("voice", lambda: scenarios.voice_calls(ctx), ratio_target=True, p99_target=True)
        if "sms" in chosen:
            measure("sms", lambda: scenarios.sms_status(ctx), ratio_target=True)
        if "e2e" in chosen:
            measure("e2e", lambda: e2e.sign_ins_by_call(ctx, standin.network), comparable=False)
        measure("reference again", lambda: scenarios.reference(ctx, "reference again, after the rest"))
        measure("bare again", lambda: scenarios.bare_reference(ctx, "bare reference again, after the rest"))
        rest = server.worker_rss_mb()
    finally:
        server.stop()
        bare.stop()
        standin.stop()
        seeder.close()

    references = [row.result.rps for row in rows if row.result.name.startswith("reference")]
    bares = [row.result.rps for row in rows if row.result.name.startswith("bare reference")]
    reference_rps, bare_rps = sum(references) / len(references), sum(bares) / len(bares)
    text, missed, held = report.table(rows, reference_rps, bare_rps)
    print(f"\nRatios are to the mean of each reference's two runs: bare {bare_rps:.0f} req/s, "
          f"in-stack {reference_rps:.0f} req/s.")
    print(text + "\n")
    print(f"Start-up: {server.startup_seconds:.2f} s (target < {report.STARTUP_LIMIT:.0f} s). "
          f"Worker RSS after the run: {fmt_rss(rest)} (target < {report.MB_LIMIT} MB each).")
    if server.startup_seconds is None or server.startup_seconds >= report.STARTUP_LIMIT:
        missed.append("start-up")
    if any(mb >= report.MB_LIMIT for mb in rest.values()):
        missed.append("worker RSS after the run")
    if any(row.result.errors for row in rows):
        print("Errors seen:\n" + report.errors(rows))
    print("Targets held: " + ("; ".join(held) or "none"))
    print("Targets: all held." if not missed else "Targets missed: " + "; ".join(missed))
    print(f"Server log: {work / 'server.log'}")
    return 0 if not missed else 1


def fmt_rss(rss: dict[int, float]) -> str:
    return ", ".join(f"{mb:.0f} MB" for mb in rss.values()) or "-"


if __name__ == "__main__":
    sys.exit(main())
