"""An Entra request waiting for the person to link themselves (web/entra.py `link`), kept in the
server-side session between the authorize post and the password: what was checked, never the hint itself."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from mfa.entra.hints import Hint
from mfa.entra.profile import Wanted
from mfa.entra.requests import AuthorizeRequest, Destination

PENDING = "entra_pending"


@dataclass(frozen=True)
class Pending:
    request: AuthorizeRequest
    hint: Hint
    at: datetime  # when Entra's request arrived: the link must follow within the sign-in's time

    def to_session(self) -> dict:
        request = self.request
        return {"to": asdict(request.destination), "nonce": request.nonce, "acrs": list(request.wanted.acrs),
                "amrs": None if request.wanted.amrs is None else list(request.wanted.amrs),
                "client_request_id": request.client_request_id, "hint": asdict(self.hint), "at": self.at.isoformat()}

    @classmethod
    def from_session(cls, kept: object) -> Pending | None:
        if not isinstance(kept, dict):
            return None
        try:
            wanted = Wanted(tuple(kept["acrs"]), None if kept["amrs"] is None else tuple(kept["amrs"]))
            request = AuthorizeRequest(Destination(**kept["to"]), kept["nonce"], wanted, "", kept["client_request_id"])
            return cls(request, Hint(**kept["hint"]), datetime.fromisoformat(kept["at"]))
        except (KeyError, TypeError, ValueError):
            return None
