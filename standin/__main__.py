"""Run the stand-in on its own: `python -m standin --port 5055`.

Credentials come from the flags, TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN, or the app's instance
folder (--instance, or INSTANCE_PATH: the `twilio_auth_token` file a development app generates
there once), and must match what the app's Twilio provider uses, or every REST request is
refused (401, Twilio error 20003) and every webhook the stand-in makes is refused (403).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from settings import SIMULATOR_ACCOUNT_SID

from .app import create_standin_app
from .server import StandinServer

DEFAULT_INSTANCE = Path(__file__).resolve().parents[1] / "instance"  # app.py's default


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m standin", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5055)
    parser.add_argument("--account-sid", default=os.environ.get("TWILIO_ACCOUNT_SID") or SIMULATOR_ACCOUNT_SID)
    parser.add_argument("--auth-token", default=os.environ.get("TWILIO_AUTH_TOKEN"))
    parser.add_argument("--instance", default=os.environ.get("INSTANCE_PATH") or str(DEFAULT_INSTANCE),
                        help="the app's instance folder, whose twilio_auth_token file is used "
                             "when no token is given (default: %(default)s)")
    args = parser.parse_args()
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
