"""sign-in integrity: server-side browser sessions, sign-ins bound to their API key and spent once

Revision ID: 0002
Revises: 0001
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "browser_sessions",
        # SHA-256 of the random id in the cookie: a copy of this table opens no browser.
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("signed_in_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_browser_sessions_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_browser_sessions")),
    )
    with op.batch_alter_table("browser_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_browser_sessions_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_browser_sessions_last_seen_at"), ["last_seen_at"], unique=False)
    with op.batch_alter_table("authentications", schema=None) as batch_op:
        # The API key (relying application) that created the sign-in; NULL for the server's own pages.
        batch_op.add_column(sa.Column("api_key_id", sa.String(length=32), nullable=True))
        # When an approved sign-in was turned into a browser session: it can be only once.
        batch_op.add_column(sa.Column("exchanged_at", sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_authentications_api_key_id"), ["api_key_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("authentications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authentications_api_key_id"))
        batch_op.drop_column("exchanged_at")
        batch_op.drop_column("api_key_id")
    with op.batch_alter_table("browser_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_browser_sessions_last_seen_at"))
        batch_op.drop_index(batch_op.f("ix_browser_sessions_user_id"))
    op.drop_table("browser_sessions")
