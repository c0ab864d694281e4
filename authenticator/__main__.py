"""python -m authenticator --state FILE {enrol,pending,approve,deny,listen} ...

Exit 0 on success; otherwise one line on stderr (never a traceback) and a non-zero status.
"""
from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from authenticator import commands
from authenticator.client import DEFAULT_TIMEOUT, DeviceError, Refused
from authenticator.state import StateError


class OneLineParser(argparse.ArgumentParser):
    """argparse prints usage over several lines; the contract is one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    root = OneLineParser(prog="python -m authenticator", description="Reference push authenticator (PUSH_SPEC).")
    root.add_argument("--state", required=True, metavar="FILE", help="JSON file with keys and enrolments (0600)")
    root.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per server request")
    verbs = root.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    enrol = verbs.add_parser("enrol", help="enrol from an enrolment URL ({base}/app#enrol=TOKEN)")
    enrol.add_argument("url")
    enrol.add_argument("--name", default="Reference authenticator")
    enrol.add_argument("--push-endpoint", metavar="URL", help="local listener URL (see listen) to subscribe with")
    verbs.add_parser("pending", help="list sign-in requests waiting for this device, one JSON object a line")
    approve = verbs.add_parser("approve", help="approve with the number shown on the sign-in screen")
    approve.add_argument("request_id")
    approve.add_argument("number")
    deny = verbs.add_parser("deny", help="deny a sign-in request")
    deny.add_argument("request_id")
    deny.add_argument("--fraud", action="store_true", help="report that the person did not try to sign in")
    listen = verbs.add_parser("listen", help="run the loopback Web Push endpoint, print each payload as JSON")
    listen.add_argument("--port", type=int, help="port to listen on (default: the enrolled endpoint's, or any)")
    listen.add_argument("--count", type=int, help="stop after this many messages")
    return root


def run(args: argparse.Namespace) -> None:
    if args.verb == "enrol":
        commands.enrol(args.state, args.url, args.name, args.push_endpoint, args.timeout)
    elif args.verb == "pending":
        commands.pending(args.state, args.timeout)
    elif args.verb == "approve":
        commands.answer(args.state, args.request_id, args.timeout, lambda d: d.approve(args.request_id, args.number))
    elif args.verb == "deny":
        commands.answer(args.state, args.request_id, args.timeout, lambda d: d.deny(args.request_id, args.fraud))
    elif args.verb == "listen":
        commands.listen(args.state, args.port, args.count, args.timeout)


def one_line(text: str) -> str:
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        run(args)
    except Refused as exc:
        print(one_line(f"refused: {exc.code}: {exc.message}"), file=sys.stderr)
        return 1
    except (DeviceError, StateError) as exc:
        print(one_line(f"error: {exc}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the contract is one line, whatever went wrong
        print(one_line(f"error: {type(exc).__name__}: {exc}"), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
