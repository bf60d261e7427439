"""Score a folder of CSV files with a batch endpoint, as a plain Python script, then look at the result with the
management client. Run it where batch_scoring.ipynb ran: it deploys code/batch_driver.py, which the notebook wrote."""

import os
import uuid

import pandas as pd
from azure.ai.ml import Input, MLClient, Output
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import (
    AmlCompute,
    BatchEndpoint,
    CodeConfiguration,
    Model,
    ModelBatchDeployment,
    ModelBatchDeploymentSettings,
)
from azure.identity import DefaultAzureCredential
from azure.mgmt.machinelearningservices import MachineLearningServicesMgmtClient

subscription_id = "00000000-0000-0000-0000-000000000000"
resource_group = "local"
workspace = "default"

ml_client = MLClient(DefaultAzureCredential(), subscription_id, resource_group, workspace)

compute = ml_client.compute.begin_create_or_update(AmlCompute(name="script-cluster", max_instances=1)).result()
endpoint = ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="threshold-script")).result()
model = ml_client.models.create_or_update(Model(name="threshold-classifier", path="model/"))
deployment = ml_client.batch_deployments.begin_create_or_update(
    ModelBatchDeployment(
        name="main",
        endpoint_name=endpoint.name,
        model=model,
        code_configuration=CodeConfiguration(code="code/", scoring_script="batch_driver.py"),
        compute=compute.name,
        settings=ModelBatchDeploymentSettings(mini_batch_size=2),
    )
).result()

default_datastore = ml_client.datastores.get_default()
output_path = f"{default_datastore.id}/paths/batch-jobs/{uuid.uuid4()}"
job = ml_client.batch_endpoints.invoke(
    endpoint_name=endpoint.name,
    deployment_name=deployment.name,
    input=Input(type=AssetTypes.URI_FOLDER, path="data/"),
    outputs={"score": Output(type=AssetTypes.URI_FOLDER, path=output_path)},
)
ml_client.jobs.stream(job.name)

scoring_job = list(ml_client.jobs.list(parent_job_name=job.name))[0]
ml_client.jobs.download(name=scoring_job.name, download_path="script-output", output_name="score")
score = pd.read_csv("script-output/named-outputs/score/predictions.csv", names=["file", "x", "prediction"], sep=" ")
print(f"script: {len(score)} rows scored, {score['prediction'].sum()} above the threshold")

mgmt = MachineLearningServicesMgmtClient(
    DefaultAzureCredential(), subscription_id, base_url=os.environ["BATCHPOINT_URL"]
)
print("management client: endpoint", mgmt.batch_endpoints.get(resource_group, workspace, endpoint.name).name)
deployments = mgmt.batch_deployments.list(resource_group, workspace, endpoint.name)
print("management client: deployments", [each.properties.provisioning_state for each in deployments])
newer = MachineLearningServicesMgmtClient(
    DefaultAzureCredential(), subscription_id, base_url=os.environ["BATCHPOINT_URL"], api_version="2026-06-01"
)
print(
    "management client, a newer api-version:", newer.batch_endpoints.get(resource_group, workspace, endpoint.name).name
)
mgmt.batch_endpoints.begin_delete(resource_group, workspace, endpoint.name).result()
print("management client: deleted", endpoint.name)
