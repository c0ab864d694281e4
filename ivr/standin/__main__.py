"""Run the stand-in on its own: `python -m ivr.standin --port 5055`.

Credentials come from the flags or TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN, and must match what
the app's Twilio provider uses, or every REST request is refused (401, Twilio error 20003).
"""

from __future__ import annotations

import argparse
import os

from .app import create_standin_app
from .server import StandinServer


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m ivr.standin", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5055)
    parser.add_argument("--account-sid", default=os.environ.get("TWILIO_ACCOUNT_SID"))
    parser.add_argument("--auth-token", default=os.environ.get("TWILIO_AUTH_TOKEN"))
    args = parser.parse_args()
    if not args.account_sid or not args.auth_token:
        parser.error("set --account-sid/--auth-token or TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN")
    app = create_standin_app(args.account_sid, args.auth_token, realtime=True)
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
