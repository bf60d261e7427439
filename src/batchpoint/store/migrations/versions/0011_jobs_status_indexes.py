"""the job list's status filter: ix_jobs_endpoint_status and ix_jobs_deployment_status

The web page lists an endpoint's (or a deployment's) jobs of one status in creation order; these indexes serve
the filter, the order and the keyset cursor in one range, as ix_jobs_endpoint does without a status, so that a
page of a status few jobs have reads one page of rows, not every job of the endpoint (docs/decisions.md, 18).
"""

from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    op.create_index("ix_jobs_endpoint_status", "jobs", ["workspace_key", "endpoint", "status", "created_us", "key"])
    op.create_index(
        "ix_jobs_deployment_status", "jobs", ["workspace_key", "endpoint", "deployment", "status", "created_us", "key"]
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_deployment_status", "jobs")
    op.drop_index("ix_jobs_endpoint_status", "jobs")
