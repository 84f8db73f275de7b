"""The first schema: ratings, sessions, exposures, outcomes.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sessions"),
        sa.UniqueConstraint("idempotency_key", name="uq_sessions_idempotency_key"),
    )
    op.create_table(
        "ratings",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("session_id", sa.String(64), nullable=True),
        sa.Column("movie_id", sa.BigInteger(), nullable=False),
        sa.Column("rating", sa.Float(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.CheckConstraint(
            "(user_id IS NULL) <> (session_id IS NULL)", name="ck_ratings_one_owner"
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name="fk_ratings_session_id_sessions"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ratings"),
        sa.UniqueConstraint("idempotency_key", name="uq_ratings_idempotency_key"),
    )
    op.create_index("ix_ratings_user_id", "ratings", ["user_id"])
    op.create_index("ix_ratings_session_id", "ratings", ["session_id"])
    op.create_table(
        "exposures",
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("unit", sa.String(255), nullable=False),
        sa.Column("experiment", sa.String(255), nullable=True),
        sa.Column("variant", sa.String(255), nullable=True),
        sa.Column("model_version", sa.String(255), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name="pk_exposures"),
    )
    op.create_table(
        "outcomes",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("movie_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"], ["exposures.request_id"], name="fk_outcomes_request_id_exposures"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_outcomes"),
        sa.UniqueConstraint("idempotency_key", name="uq_outcomes_idempotency_key"),
    )
    op.create_index("ix_outcomes_request_id", "outcomes", ["request_id"])


def downgrade() -> None:
    op.drop_table("outcomes")
    op.drop_table("exposures")
    op.drop_index("ix_ratings_session_id", "ratings")
    op.drop_index("ix_ratings_user_id", "ratings")
    op.drop_table("ratings")
    op.drop_table("sessions")
