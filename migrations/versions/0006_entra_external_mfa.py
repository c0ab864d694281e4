"""Microsoft Entra external MFA: linked Entra users, Entra's requests, our id_token signing keys,
and the method type that approved each sign-in (the id_token's `amr`)

Revision ID: 0006
Revises: 0005
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("authentications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("approved_with", sa.String(length=8), nullable=True))
    op.create_table(
        "entra_links",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("object_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_entra_links_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entra_links")),
        sa.UniqueConstraint("tenant_id", "object_id", name=op.f("uq_entra_links_tenant_id")),
    )
    with op.batch_alter_table("entra_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_entra_links_user_id"), ["user_id"], unique=False)
    op.create_table(
        "entra_requests",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("authentication_id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("object_id", sa.String(length=36), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("nonce", sa.String(length=255), nullable=False),
        sa.Column("hint_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("redirect_uri", sa.String(length=128), nullable=False),
        sa.Column("acr", sa.String(length=48), nullable=False),
        sa.Column("amr_allowed", sa.String(length=255), nullable=False),
        sa.Column("client_request_id", sa.String(length=64), nullable=True),
        sa.Column("links_on_approval", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["authentication_id"], ["authentications.id"],
                                name=op.f("fk_entra_requests_authentication_id_authentications"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entra_requests")),
        sa.UniqueConstraint("authentication_id", name=op.f("uq_entra_requests_authentication_id")),
        sa.UniqueConstraint("hint_hash", name=op.f("uq_entra_requests_hint_hash")),
        sa.UniqueConstraint("nonce", name=op.f("uq_entra_requests_nonce")),
    )
    op.create_table(
        "entra_signing_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("private_key", sa.LargeBinary(), nullable=False),
        sa.Column("certificate", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("signing_since", sa.DateTime(), nullable=True),
        sa.Column("retired_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_entra_signing_keys")),
    )


def downgrade() -> None:
    op.drop_table("entra_signing_keys")
    op.drop_table("entra_requests")
    with op.batch_alter_table("entra_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_entra_links_user_id"))
    op.drop_table("entra_links")
    with op.batch_alter_table("authentications", schema=None) as batch_op:
        batch_op.drop_column("approved_with")
