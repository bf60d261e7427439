"""What a job's workers get so that code inside them reaches the server as it would reach Azure from a compute.

On Azure ML compute, ``DefaultAzureCredential()`` in a scoring script gets the compute's managed identity through
``MSI_ENDPOINT``/``MSI_SECRET`` (the Azure ML protocol). batchpoint's workers get the same two variables, naming the
server's ``/identity/msi/token`` and a secret that names the job and stops working when it ends
(``access/managed_identity.py``; docs/security.md says who the tokens are for). With them: the cloud metadata URL, so
an ``MLClient`` made in a script talks to this server too, and the server's CA bundle, to trust it.

All of it is ``WorkerIdentity.variables``: a model job's workers get it in the job spec's ``job_variables``
(``WorkerIdentity.apply``; never a warm template, ``runtime/templates.py``), a pipeline step with its own variables
(``jobs/pipelines/planner.py``, Decision 19: the secret of the step's child job). That is all their environment
holds besides the operator's settings (``runtime/sandbox/policy.py``): the variables that would make azure-identity
use another protocol (``IDENTITY_*``, which win over ``MSI_*``, and ``IMDS_ENDPOINT``), which the server inherits
from a shell where ``eval "$(batchpoint env)"`` ran, never reach a worker or step, nor does a stale
``AZUREML_CURRENT_CLOUD``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from batchpoint.access.issuer import Issuer
from batchpoint.access.managed_identity import MSI_PATH, job_secret
from batchpoint.arm.cloud import metadata_url
from batchpoint.runtime.spec import JobSpec


@dataclass(frozen=True)
class WorkerIdentity:
    server_url: str
    """The server's URL as processes on its machine reach it."""
    issuer: Issuer
    ca_bundle: Path | None
    """The server's CA and the roots in force (``app/tls.py``); None for a server on plain HTTP."""

    def apply(self, spec: JobSpec, job_id: str) -> JobSpec:
        """``spec`` with the job's identity variables; the deployment's own variables win."""
        return replace(spec, job_variables={**spec.job_variables, **self.variables(job_id)})

    def variables(self, job_id: str) -> dict[str, str]:
        """What a process of the job ``job_id`` gets to reach the server as the managed identity of the job's compute,
        while the job has not ended."""
        variables = {
            "MSI_ENDPOINT": self.server_url + MSI_PATH,
            "MSI_SECRET": job_secret(self.issuer, job_id),
            "ARM_CLOUD_METADATA_URL": metadata_url(self.server_url),
        }
        if self.ca_bundle is not None and self.ca_bundle.is_file():
            variables |= {"REQUESTS_CA_BUNDLE": str(self.ca_bundle), "SSL_CERT_FILE": str(self.ca_bundle)}
        return variables
