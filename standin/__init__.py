"""A Twilio-faithful local stand-in: Twilio's REST API for calls and texts, a simulated
telephone network that walks calls through the app's TwiML, and pages for people (/phone,
/inbox). Point the twilio SDK at it with `client.api.base_url = server.url`."""

from .app import create_standin_app
from .network import Network
from .records import SimCall, SimMessage
from .server import StandinServer

__all__ = ["Network", "SimCall", "SimMessage", "StandinServer", "create_standin_app"]
