"""The Azure VM sizes batchpoint knows: what `VirtualMachineSizes_List` (`locations/{l}/vmSizes`,
`ml_client.compute.list_sizes()`) answers, and how many GPUs a node of a compute's size has (its jobs' workers on
a Ray cluster each ask Ray for one when it has any: `jobs/runner.py`).

One row per size, with Azure's published figures (the DSv2 rows as the 2025-12-01 spec's example lists them; the
others from Azure's size pages: vCPUs, memory, GPUs, the temporary disk in GiB x 1024). `estimatedVMPrices` is
left out: batchpoint knows no prices. A size that is not here is still a valid compute size when it is spelled as
Azure spells sizes (`Standard_...`): Azure has more sizes than this table, and a newer one must not be refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from batchpoint.api.versions import no_registered_provider
from batchpoint.arm.ids import ALL_SUBSCRIPTIONS, WORKSPACE_TYPE
from batchpoint.arm.resources import same_location
from batchpoint.config import DEFAULT_LOCATION
from batchpoint.store import Store

OS_VHD_SIZE_MB = 1047552
"""The OS disk of every size Azure ML lists (1023 GiB)."""
SIZE_NAME = re.compile(r"(standard|basic)_[a-z0-9][a-z0-9_-]*", re.IGNORECASE)
"""How Azure spells a VM size: `Standard_NC6s_v3`, `STANDARD_DS3_V2`, `Basic_A1`."""
LOCATION_SCAN_LIMIT = 10_000
"""The workspaces of a subscription whose locations `vm_sizes` knows (far more than a server has)."""
GPU_SERIES = re.compile(r"standard_n[cdvg]", re.IGNORECASE)
"""Azure's N-series, every size of which has GPUs (`Standard_NC6`, `Standard_NV36ads_A10_v5`), listed here or not."""
COMPUTE_TYPES = ("AmlCompute",)
"""What `supportedComputeTypes` says: batchpoint runs compute clusters only (`rules.py`)."""


@dataclass(frozen=True)
class VmSize:
    name: str
    family: str
    vcpus: int
    memory_gb: float
    temp_disk_gib: int
    gpus: int = 0

    def wire(self) -> dict[str, Any]:
        """Azure's `VirtualMachineSize`."""
        return {
            "name": self.name,
            "family": self.family,
            "vCPUs": self.vcpus,
            "gpus": self.gpus,
            "osVhdSizeMB": OS_VHD_SIZE_MB,
            "maxResourceVolumeMB": self.temp_disk_gib * 1024,
            "memoryGB": self.memory_gb,
            "lowPriorityCapable": True,
            "premiumIO": True,
            "supportedComputeTypes": list(COMPUTE_TYPES),
        }


TABLE = """
name                        family                        vCPUs  memoryGB  temp disk GiB  GPUs
Standard_DS1_v2             standardDSv2Family                1       3.5              7     0
Standard_DS2_v2             standardDSv2Family                2       7.0             14     0
Standard_DS3_v2             standardDSv2Family                4      14.0             28     0
Standard_DS4_v2             standardDSv2Family                8      28.0             56     0
Standard_DS5_v2             standardDSv2Family               16      56.0            112     0
Standard_DS11_v2            standardDSv2Family                2      14.0             28     0
Standard_DS12_v2            standardDSv2Family                4      28.0             56     0
Standard_DS13_v2            standardDSv2Family                8      56.0            112     0
Standard_DS14_v2            standardDSv2Family               16     112.0            224     0
Standard_D2s_v3             standardDSv3Family                2       8.0             16     0
Standard_D4s_v3             standardDSv3Family                4      16.0             32     0
Standard_D8s_v3             standardDSv3Family                8      32.0             64     0
Standard_D16s_v3            standardDSv3Family               16      64.0            128     0
Standard_D32s_v3            standardDSv3Family               32     128.0            256     0
Standard_NC6s_v3            standardNCSv3Family               6     112.0            736     1
Standard_NC12s_v3           standardNCSv3Family              12     224.0           1474     2
Standard_NC24s_v3           standardNCSv3Family              24     448.0           2948     4
Standard_NC24rs_v3          standardNCSv3Family              24     448.0           2948     4
Standard_NC4as_T4_v3        standardNCASv3_T4Family           4      28.0            180     1
Standard_NC8as_T4_v3        standardNCASv3_T4Family           8      56.0            360     1
Standard_NC16as_T4_v3       standardNCASv3_T4Family          16     110.0            360     1
Standard_NC64as_T4_v3       standardNCASv3_T4Family          64     440.0           2880     4
Standard_NC24ads_A100_v4    standardNCADSA100v4Family        24     220.0             64     1
Standard_NC48ads_A100_v4    standardNCADSA100v4Family        48     440.0            128     2
Standard_NC96ads_A100_v4    standardNCADSA100v4Family        96     880.0            256     4
Standard_ND40rs_v2          standardNDSv2Family              40     672.0           2948     8
Standard_ND96asr_v4         standardNDASv4_A100Family        96     900.0           6000     8
Standard_ND96amsr_A100_v4   standardNDAMSv4_A100Family       96    1900.0           6400     8
Standard_ND96isr_H100_v5    standardNDSH100v5Family          96    1900.0           1000     8
Standard_NV12s_v3           standardNVSv3Family              12     112.0            320     1
Standard_NV24s_v3           standardNVSv3Family              24     224.0            640     2
Standard_NV48s_v3           standardNVSv3Family              48     448.0           1280     4
"""
"""GPUs: NCv3 and NDv2 V100, NCasT4_v3 T4, NC A100 v4 A100 80 GB PCIe, ND A100 v4 A100 40 GB, NDm A100 v4 A100
80 GB, ND H100 v5 H100, NVv3 M60."""


def _rows(table: str) -> tuple[VmSize, ...]:
    rows = [line.split() for line in table.strip().splitlines()[1:]]
    return tuple(
        VmSize(name, family, int(cpus), float(memory), int(disk), int(gpus))
        for name, family, cpus, memory, disk, gpus in rows
    )


SIZES = _rows(TABLE)
_BY_NAME = {size.name.lower(): size for size in SIZES}


def known_size(name: str | None) -> VmSize | None:
    """The size named so, in any casing (Azure's sizes are case-insensitive), if batchpoint knows it."""
    return _BY_NAME.get(name.lower()) if name else None


def gpus_of(name: str | None) -> int:
    """The GPUs of a node of this size: for an N-series size this table lacks (a retired `Standard_NC6`, a newer
    one), at least one, so that its workers still ask Ray for a GPU as they did before the table."""
    size = known_size(name)
    if size is not None:
        return size.gpus
    return 1 if name and GPU_SERIES.match(name) else 0


def is_size_name(name: str) -> bool:
    return bool(SIZE_NAME.fullmatch(name))


def vm_sizes(store: Store, subscription: str, location: str, api_version: str) -> dict[str, Any]:
    """`VirtualMachineSizes_List`: the same sizes in every location the subscription has a workspace in, and in the
    server's own; any other location gets ARM's answer to a location its provider does not serve."""
    locations = known_locations(store, subscription)
    if not any(same_location(location, known) for known in locations):
        raise no_registered_provider(api_version, "locations/vmSizes", location, locations)
    return {"value": [size.wire() for size in SIZES]}


def known_locations(store: Store, subscription: str) -> list[str]:
    workspaces = store.list_below(f"{ALL_SUBSCRIPTIONS}/{subscription}", WORKSPACE_TYPE, None, LOCATION_SCAN_LIMIT)
    found = [DEFAULT_LOCATION, *(workspace.body["location"] for workspace in workspaces)]
    return sorted({"".join(location.split()).lower() for location in found})
