"""Who must use a second factor, by role and region (MFA_REQUIRED_ROLES / _REGIONS), how
a verification call is approved, by role (CALL_APPROVAL), and for how many days a browser may be
remembered, by role (REMEMBER_BROWSER_DAYS)."""
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
    remember_days: int = 0  # "don't ask again on this browser": 0 is off (for every role not below)
    remember_days_by_role: dict[str, int] = field(default_factory=dict)

    def requires_mfa(self, user: User) -> bool:
        return user.role in self.required_roles and user.region in self.required_regions

    def call_approval_for(self, user: User) -> str:
        """HASH or NUMBER: what a verification call to this person asks for."""
        return self.call_approval_by_role.get(user.role, self.call_approval)

    def remember_days_for(self, user: User) -> int:
        """How long this person's browser may skip the second step; 0: always ask."""
        return self.remember_days_by_role.get(user.role, self.remember_days)

    def explain(self, user: User) -> str:
        """Why MFA is or is not required, in words for the audit log."""
        if self.requires_mfa(user):
            return f"role {user.role} in region {user.region} requires MFA"
        if user.role not in self.required_roles:
            return f"role {user.role} does not require MFA"
        return f"region {user.region} does not require MFA"
