"""Run the stand-in on its own: `python -m standin` (port 5001, where the app looks by default).

Credentials come from the flags, TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN, or the app's instance
folder (--instance, or INSTANCE_PATH: the `twilio_auth_token` file a development app generates
there once), and must match what the app's Twilio provider uses, or every REST request is
refused (401, Twilio error 20003) and every webhook the stand-in makes is refused (403).
Webhooks to an https app whose certificate is self-signed need REQUESTS_CA_BUNDLE=<its cert
or CA file>; without it each one fails with Twilio error 11205, logged as one line.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from urllib.parse import urlsplit

from settings import SIMULATOR_ACCOUNT_SID, SIMULATOR_API_BASE_URL

from .app import create_standin_app
from .server import StandinServer

DEFAULT_INSTANCE = Path(__file__).resolve().parents[1] / "instance"  # app.py's default
DEFAULT_PORT = urlsplit(SIMULATOR_API_BASE_URL).port  # one number for the app and the stand-in


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m standin", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: %(default)s); the pages have no "
                             "sign-in, so keep it off any network people you do not trust can reach")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="(default: %(default)s)")
    parser.add_argument("--account-sid", default=os.environ.get("TWILIO_ACCOUNT_SID") or SIMULATOR_ACCOUNT_SID,
                        help="the app's TWILIO_ACCOUNT_SID (default: %(default)s)")
    parser.add_argument("--auth-token", default=os.environ.get("TWILIO_AUTH_TOKEN"),
                        help="the app's TWILIO_AUTH_TOKEN (default: that variable, else --instance)")
    parser.add_argument("--instance", default=os.environ.get("INSTANCE_PATH") or str(DEFAULT_INSTANCE),
                        help="the app's instance folder, whose twilio_auth_token file is used "
                             "when no token is given (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    token_file = Path(args.instance) / "twilio_auth_token"
    if not args.auth_token and token_file.exists():
        args.auth_token = token_file.read_text().strip()
    if not args.auth_token:
        parser.error(f"no auth token: start the app once (it writes {token_file}), "
                     "or set --auth-token or TWILIO_AUTH_TOKEN")
    app = create_standin_app(args.account_sid, args.auth_token, realtime=True,
                             started_by=f"python -m standin (instance {args.instance})")
    server = StandinServer(app, host=args.host, port=args.port)
    print(f"Twilio stand-in on {server.url} (phone: {server.url}/phone, "
          f"inbox: {server.url}/inbox)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
