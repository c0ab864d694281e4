"""Who must use a second factor, by role and region (MFA_REQUIRED_ROLES / _REGIONS), and how
a verification call is approved, by role (CALL_APPROVAL)."""
from __future__ import annotations

from dataclasses import dataclass, field

from models import User

# CALL_APPROVAL's modes: press # (approve-only), or key the two digits shown on the sign-in screen,
# which binds the approval to that screen (NIST SP 800-63B-4 §3.1.3.1).
HASH, NUMBER = "hash", "number"
CALL_APPROVALS = (HASH, NUMBER)


@dataclass(frozen=True)
class Policy:
    required_roles: frozenset[str]
    required_regions: frozenset[str]
    call_approval: str = HASH  # for every role not in call_approval_by_role
    call_approval_by_role: dict[str, str] = field(default_factory=dict)

    def requires_mfa(self, user: User) -> bool:
        return user.role in self.required_roles and user.region in self.required_regions

    def call_approval_for(self, user: User) -> str:
        """HASH or NUMBER: what a verification call to this person asks for."""
        return self.call_approval_by_role.get(user.role, self.call_approval)

    def explain(self, user: User) -> str:
        """Why MFA is or is not required, in words for the audit log."""
        if self.requires_mfa(user):
            return f"role {user.role} in region {user.region} requires MFA"
        if user.role not in self.required_roles:
            return f"role {user.role} does not require MFA"
        return f"region {user.region} does not require MFA"
