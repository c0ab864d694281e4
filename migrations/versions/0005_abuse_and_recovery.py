"""abuse, spend and recovery: smart lockout counters, familiar sources, recovery codes,
temporary access passes, and what toll-fraud controls need on each text or call

Revision ID: 0005
Revises: 0004
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unfamiliar_failed_count", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("unfamiliar_locked_until", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("app_password_failed_count", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("app_password_locked_until", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("lockouts", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "familiar_sources",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("source_hash", sa.String(length=64), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_familiar_sources_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "source_hash", name=op.f("pk_familiar_sources")),
    )
    with op.batch_alter_table("familiar_sources", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_familiar_sources_last_seen_at"), ["last_seen_at"], unique=False)
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_recovery_codes_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_recovery_codes_code_hash")),
    )
    with op.batch_alter_table("recovery_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recovery_codes_user_id"), ["user_id"], unique=False)
    op.create_table(
        "access_passes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("uses_allowed", sa.Integer(), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_access_passes_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_passes")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_access_passes_secret_hash")),
    )
    with op.batch_alter_table("access_passes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_passes_user_id"), ["user_id"], unique=False)
    with op.batch_alter_table("send_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("challenge_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("range_lookup", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("outcome", sa.String(length=16), nullable=True))
        batch_op.create_index(batch_op.f("ix_send_records_challenge_id"), ["challenge_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_send_records_range_lookup"), ["range_lookup"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("send_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_send_records_range_lookup"))
        batch_op.drop_index(batch_op.f("ix_send_records_challenge_id"))
        batch_op.drop_column("outcome")
        batch_op.drop_column("range_lookup")
        batch_op.drop_column("challenge_id")
    op.drop_table("access_passes")
    op.drop_table("recovery_codes")
    op.drop_table("familiar_sources")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("lockouts")
        batch_op.drop_column("app_password_locked_until")
        batch_op.drop_column("app_password_failed_count")
        batch_op.drop_column("unfamiliar_locked_until")
        batch_op.drop_column("unfamiliar_failed_count")
