"""remembered browsers: "don't ask again on this browser for N days"

Revision ID: 0003
Revises: 0002
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "remembered_browsers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        # HMAC-SHA256 (keyed from DATA_KEY) of the random token in the browser's cookie.
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_remembered_browsers_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remembered_browsers")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_remembered_browsers_token_hash")),
    )
    with op.batch_alter_table("remembered_browsers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_remembered_browsers_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_remembered_browsers_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("remembered_browsers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_remembered_browsers_expires_at"))
        batch_op.drop_index(batch_op.f("ix_remembered_browsers_user_id"))
    op.drop_table("remembered_browsers")
