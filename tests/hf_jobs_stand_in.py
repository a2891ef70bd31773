"""A stand-in for huggingface_hub's HfApi Jobs methods at the boundary of the network: every call is bound to
the installed HfApi's own signature first and answered with huggingface_hub's own JobInfo and JobHardwareInfo;
run_job runs the job's exact command in a local subprocess with each volume's mount path a local folder (a
model repo's volume: the local folder standing in for that repo), offline (HF_HUB_OFFLINE=1) as nothing is to
be downloaded."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import huggingface_hub

from conftest import ROOT

HF_API = huggingface_hub.HfApi  # the real class, also while a test puts the stand-in in its place
HARDWARE = [  # list_jobs_hardware's answer, as the Hub's API sends it (prices made up: no network here)
    {
        "name": "cpu-basic",
        "prettyName": "CPU Basic",
        "cpu": "2 vCPU",
        "ram": "16 GB",
        "unitCostMicroUSD": 167,
        "unitCostUSD": 0.000167,
        "unitLabel": "minute",
    },
    {
        "name": "l40sx1",
        "prettyName": "Nvidia L40S - 1x",
        "cpu": "8 vCPU",
        "ram": "62 GB",
        "unitCostMicroUSD": 30000,
        "unitCostUSD": 0.03,
        "unitLabel": "minute",
        "accelerator": {"type": "gpu", "model": "L40S", "quantity": "1", "vram": "48 GB", "manufacturer": "Nvidia"},
    },
    {
        "name": "h200",
        "prettyName": "Nvidia H200",
        "cpu": "23 vCPU",
        "ram": "256 GB",
        "unitCostMicroUSD": 83334,
        "unitCostUSD": 0.083334,
        "unitLabel": "minute",
        "accelerator": {"type": "gpu", "model": "H200", "quantity": "1", "vram": "141 GB", "manufacturer": "Nvidia"},
    },
]


class LocalHfJobs:
    """HfApi's Jobs methods: every call bound to the real signature first (a wrong name fails here as it would
    on the Hub), then served locally; a volume's mount path is a local folder in the command's arguments."""

    def __init__(self, folders: dict[str, Path], repos: dict[str, str] | None = None, models=None):
        # folders: mount path -> the local folder standing in for it; repos: mount path -> the repo the Space
        # mounts there (its model volumes, as get_space_runtime lists them); models: a model repo's id -> the
        # local folder its volume shows, wherever a job mounts it
        self.folders, self.calls, self.procs, self.repos = folders, [], {}, dict(repos or {})
        self.models = dict(models or {})

    def _bind(self, name, **kwargs):
        inspect.signature(getattr(HF_API, name)).bind(None, **kwargs)
        self.calls.append((name, kwargs))

    def _local(self, arg: str) -> str:
        for mount, folder in self.folders.items():
            if arg == mount or arg.startswith(mount + "/"):
                return str(folder) + arg[len(mount) :]
        return arg

    def _local_env(self, value: str) -> str:
        """An env value as the local job sees it: a path, or a JSON mapping of names to paths."""
        try:
            mapping = json.loads(value)
        except ValueError:
            return self._local(value)
        if not isinstance(mapping, dict):
            return value
        return json.dumps({k: self._local(v) if isinstance(v, str) else v for k, v in mapping.items()})

    def whoami(self, **kwargs):
        self._bind("whoami", **kwargs)
        return {"name": "alice", "type": "user"}

    def get_space_runtime(self, repo_id, **kwargs):
        self._bind("get_space_runtime", repo_id=repo_id, **kwargs)
        volumes = [{"type": "bucket", "source": "alice/dfd-data", "mountPath": "/data"}]
        volumes += [{"type": "model", "source": s, "mountPath": m, "readOnly": True} for m, s in self.repos.items()]
        return huggingface_hub.SpaceRuntime({"stage": "RUNNING", "volumes": volumes})

    def list_jobs_hardware(self, **kwargs):
        self._bind("list_jobs_hardware", **kwargs)
        return [huggingface_hub.JobHardwareInfo(**h) for h in HARDWARE]

    def run_job(self, **kwargs):
        self._bind("run_job", **kwargs)
        for volume in kwargs["volumes"]:
            assert isinstance(volume, huggingface_hub.Volume)
            if volume.type == "model" and volume.source in self.models:  # the Hub mounts the repo, read-only
                assert (
                    volume.read_only
                    and self.folders.get(volume.mount_path, self.models[volume.source]) == (self.models[volume.source])
                )
                self.folders[volume.mount_path] = self.models[volume.source]
            assert volume.mount_path in self.folders, f"no local folder stands in for {volume.to_dict()}"
        command = [sys.executable if a == "python" else self._local(a) for a in kwargs["command"]]
        job_id = f"job{len(self.procs)}"
        env = {k: self._local_env(v) for k, v in kwargs["env"].items()}
        env = {"PATH": "/usr/bin:/bin", **env, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        with open(self.folders["/data"] / f"{job_id}.log", "w") as log:  # the child keeps its own copy
            self.procs[job_id] = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
        return self._info(job_id, kwargs["namespace"])

    def _info(self, job_id, namespace):
        code = self.procs[job_id].poll()
        stage = "RUNNING" if code is None else "COMPLETED" if code == 0 else "CANCELED" if code < 0 else "ERROR"
        return huggingface_hub.JobInfo(
            id=job_id, status={"stage": stage, "message": None}, owner={"id": "1", "name": namespace, "type": "user"}
        )

    def inspect_job(self, **kwargs):
        self._bind("inspect_job", **kwargs)
        return self._info(kwargs["job_id"], kwargs["namespace"])

    def fetch_job_logs(self, **kwargs):
        self._bind("fetch_job_logs", **kwargs)
        lines = (self.folders["/data"] / f"{kwargs['job_id']}.log").read_text().splitlines()
        return iter(lines[-kwargs["tail"] :] if kwargs.get("tail") else lines)

    def fetch_job_metrics(self, **kwargs):
        self._bind("fetch_job_metrics", **kwargs)
        if self.procs[kwargs["job_id"]].poll() is not None:
            return iter([])  # a finished job has no live sample
        gpu = {"utilization": 87, "memory_used_bytes": 30_100_000_000, "memory_total_bytes": 48_000_000_000}
        return iter([{"cpu_usage_pct": 40, "gpus": {"882fa930": gpu}, "replica": "57vr7"}])  # the docs' shape

    def cancel_job(self, **kwargs):
        self._bind("cancel_job", **kwargs)
        self.procs[kwargs["job_id"]].terminate()
        self.procs[kwargs["job_id"]].wait(timeout=60)
