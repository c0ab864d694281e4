"""push approvals: the phones (web app or reference authenticator) that approve sign-ins

Revision ID: 0004
Revises: 0003
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "push_devices",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("method_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        # The sign-in (or security-info change) that made the set-up link: only it may finish the set-up.
        sa.Column("authentication_id", sa.String(length=32), nullable=True),
        sa.Column("name", sa.String(length=60), nullable=True),
        sa.Column("public_key", sa.LargeBinary(), nullable=True),
        sa.Column("subscription_encrypted", sa.LargeBinary(), nullable=True),
        # SHA-256 of the single-use enrolment token (256 random bits); cleared once used.
        sa.Column("enrolment_token_hash", sa.String(length=64), nullable=True),
        sa.Column("enrolment_expires_at", sa.DateTime(), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(), nullable=True),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["method_id"], ["methods.id"], name=op.f("fk_push_devices_method_id_methods"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_push_devices_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_devices")),
        sa.UniqueConstraint("method_id", name=op.f("uq_push_devices_method_id")),
        sa.UniqueConstraint("enrolment_token_hash", name=op.f("uq_push_devices_enrolment_token_hash")),
    )
    with op.batch_alter_table("push_devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_push_devices_user_id"), ["user_id"], unique=False)
    op.create_table(
        "device_nonces",
        sa.Column("device_id", sa.String(length=32), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["push_devices.id"], name=op.f("fk_device_nonces_device_id_push_devices"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("device_id", "nonce", name=op.f("pk_device_nonces")),
    )
    with op.batch_alter_table("device_nonces", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_nonces_seen_at"), ["seen_at"], unique=False)
    with op.batch_alter_table("challenges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("answered_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("challenges", schema=None) as batch_op:
        batch_op.drop_column("answered_at")
    with op.batch_alter_table("device_nonces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_nonces_seen_at"))
    op.drop_table("device_nonces")
    with op.batch_alter_table("push_devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_push_devices_user_id"))
    op.drop_table("push_devices")
