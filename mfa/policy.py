"""Who must use a second factor: by role and region (MFA_REQUIRED_ROLES / _REGIONS)."""
from __future__ import annotations

from dataclasses import dataclass

from models import User


@dataclass(frozen=True)
class Policy:
    required_roles: frozenset[str]
    required_regions: frozenset[str]

    def requires_mfa(self, user: User) -> bool:
        return user.role in self.required_roles and user.region in self.required_regions

    def explain(self, user: User) -> str:
        """Why MFA is or is not required, in words for the audit log."""
        if self.requires_mfa(user):
            return f"role {user.role} in region {user.region} requires MFA"
        if user.role not in self.required_roles:
            return f"role {user.role} does not require MFA"
        return f"region {user.region} does not require MFA"
