"""SQLAlchemy 2 typed tables. Small pure methods only: no I/O, no commits."""
from models.audit import AuditEvent
from models.authentication import Authentication, Challenge
from models.base import Base
from models.browser_session import BrowserSession
from models.do_not_call import DoNotCall
from models.entra import EntraLink, EntraRequest, EntraSigningKey
from models.familiar_source import FamiliarSource
from models.method import Method
from models.push_device import DeviceNonce, PushDevice
from models.recovery import AccessPass, RecoveryCode
from models.remembered_browser import RememberedBrowser
from models.send_record import SendRecord
from models.user import ApiKey, AppPassword, User

__all__ = [
    "AccessPass", "ApiKey", "AppPassword", "AuditEvent", "Authentication", "Base", "BrowserSession", "Challenge",
    "DeviceNonce", "DoNotCall", "EntraLink", "EntraRequest", "EntraSigningKey",
    "FamiliarSource", "Method", "PushDevice", "RecoveryCode", "RememberedBrowser",
    "SendRecord", "User",
]
