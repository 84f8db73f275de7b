"""Experiments: their definitions, and per exposure the interleaving teams and the unit's
pre-experiment activity (the CUPED covariate).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exposures") as b:
        b.add_column(sa.Column("teams", sa.JSON(), nullable=True))
        b.add_column(sa.Column("pre", sa.Float(), nullable=True))
    op.create_index("ix_exposures_experiment", "exposures", ["experiment"])
    op.create_table(
        "experiments",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_experiments"),
    )


def downgrade() -> None:
    op.drop_table("experiments")
    op.drop_index("ix_exposures_experiment", "exposures")
    with op.batch_alter_table("exposures") as b:
        b.drop_column("pre")
        b.drop_column("teams")
