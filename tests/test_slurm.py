"""The SLURM profile: its resources, and a real run of the workflow on a real SLURM cluster.

The cluster test needs a SLURM with an idle node (CI starts one on localhost with `bash .ci/slurm.sh start`);
without one it is skipped with the reason. It runs the tiny search twice in separate copies of the
workflow (separate results and training caches): once through `config/profiles/slurm` with only the
overrides a one-node test cluster needs, once locally; the SLURM run must have submitted every job to
SLURM (job ids, and their completion in SLURM's own records) and produce the same cells and accuracies.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SLURM_PROFILE = REPO / "config/profiles/slurm/config.yaml"
LOCAL_PROFILE = REPO / "config/profiles/local/config.yaml"
TINY = "tests/configs/tiny.yaml"
TRAINING_RULES = ("train_shard", "final_train")
RUN_TIMEOUT_S = 900  # a hang (e.g. a job SLURM can never schedule) fails the test instead of CI
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake_resources(dry_run_output: str, rule: str) -> dict[str, str]:
    """The `resources:` of the first job of `rule` in a Snakemake dry-run printout."""
    match = re.search(
        rf"^\s*rule {rule}:\n(?:\s+\w+:.*\n)*?\s+resources: (.*)$", dry_run_output, re.MULTILINE
    )
    assert match, f"no job of rule {rule} in the dry run:\n{dry_run_output[-3000:]}"
    return dict(item.split("=", 1) for item in match.group(1).split(", "))


def dry_run(*args: str) -> str:
    result = subprocess.run(
        [*SNAKEMAKE, "-n", "--configfile", TINY, "--config", f"name=dry-{uuid.uuid4().hex[:8]}", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def test_slurm_profile_asks_a_gpu_and_more_memory_for_training() -> None:
    out = dry_run("--profile", "config/profiles/slurm")
    train = snakemake_resources(out, "train_shard")
    assert train["gpu"] == "1"
    assert int(train["cpus_per_task"]) >= 1
    other = snakemake_resources(out, "merge_shards")
    assert "gpu" not in other
    assert int(train["mem_mb"]) > int(other["mem_mb"])
    assert int(train["runtime"]) > int(other["runtime"])
    for resources in (train, other):
        assert resources["slurm_partition"] and resources["slurm_account"]


def test_slurm_profile_training_gpu_and_resources_growing_with_the_attempt() -> None:
    profile = yaml.safe_load(SLURM_PROFILE.read_text())
    assert profile["executor"] == "slurm"
    assert profile["retries"] >= 1
    for rule in TRAINING_RULES:
        assert profile["set-resources"][rule]["gpu"] == 1, (
            f"{rule} must ask for a GPU (resource gpu, not slurm_extra)"
        )
    for resources in [profile["default-resources"], *(profile["set-resources"][r] for r in TRAINING_RULES)]:
        for key in ("mem_mb", "runtime"):
            first, third = (eval(str(resources[key]), {"attempt": a}) for a in (1, 3))
            assert third > first > 0, f"{key} = {resources[key]!r} does not grow with attempt"


def test_local_profile_limits_gpu_jobs() -> None:
    out = dry_run("--profile", "config/profiles/local", "--config", "train={device: cuda}")
    assert snakemake_resources(out, "train_shard")["gpu"] == "1"
    assert yaml.safe_load(LOCAL_PROFILE.read_text())["resources"]["gpu"] >= 1


def idle_partition() -> str:
    """A partition with an idle node, or skip the test with the reason."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        pytest.skip(
            "SLURM is not installed (no sinfo/sbatch): start a local cluster with `bash .ci/slurm.sh start`"
        )
    try:
        result = subprocess.run(
            ["sinfo", "--noheader", "--states=idle", "--format=%P"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("sinfo got no answer in 30 s: is slurmctld running? (`bash .ci/slurm.sh status`)")
    if result.returncode != 0:
        pytest.skip(
            f"sinfo failed ({result.stderr.strip()}): start a local cluster with `bash .ci/slurm.sh start`"
        )
    partitions = result.stdout.split()
    if not partitions:
        pytest.skip("SLURM has no idle node: start a local cluster with `bash .ci/slurm.sh start`")
    return partitions[0].rstrip("*")


def cluster_profile(profile_dir: Path, partition: str) -> Path:
    """config/profiles/slurm with only what a one-node test cluster without GPUs needs changed."""
    profile = yaml.safe_load(SLURM_PROFILE.read_text())
    profile["default-resources"]["slurm_partition"] = partition
    del profile["default-resources"]["slurm_account"]  # no accounts without slurmdbd
    profile["default-resources"]["mem_mb"] = "attempt * 1000"  # the profile's sizes exceed the test node
    for rule in TRAINING_RULES:
        # no GPU on the test node, and 2 CPUs: the profile's 8 would queue forever
        profile["set-resources"][rule].update(gpu=0, cpus_per_task=1, mem_mb="attempt * 2000")
    # No slurmdbd, so no sacct: poll with squeue (MinJobAge 600 s in .ci/slurm.sh keeps finished jobs
    # listed), soon after submission, and keep the logs of successful jobs as evidence.
    profile["slurm-status-command"] = "squeue"
    profile["slurm-init-seconds-before-status-checks"] = 2
    profile["slurm-keep-successful-logs"] = True
    profile_dir.mkdir()
    (profile_dir / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return profile_dir


def workflow_copy(root: Path) -> Path:
    """A private copy of the workflow, so each run has its own results/ and training cache."""
    root.mkdir()
    for part in ("workflow", "config", "tests/configs"):
        shutil.copytree(REPO / part, root / part, ignore=shutil.ignore_patterns("__pycache__", ".snakemake"))
    return root


def slurmctld_log() -> Path | None:
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout
    match = re.search(r"^SlurmctldLogFile\s*=\s*(\S+)", config, re.MULTILINE)
    path = Path(match.group(1)) if match else None
    return path if path is not None and path.is_file() else None


def log_size(log: Path | None) -> int:
    return log.stat().st_size if log is not None else 0


def completed_in_slurm(job_ids: list[str], log: Path | None, log_start: int) -> dict[str, bool]:
    """Whether SLURM itself recorded each job as finished with exit status 0: in the slurmctld log
    written since `log_start` (job ids restart with a fresh cluster), else in squeue's list."""
    if log is not None:
        with log.open("rb") as f:
            f.seek(log_start)
            text = f.read().decode(errors="replace")
        return {j: f"_job_complete: JobId={j} WEXITSTATUS 0" in text for j in job_ids}
    listed = subprocess.run(
        ["squeue", "--noheader", "--states=all", "--format=%i|%T", f"--jobs={','.join(job_ids)}"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    states = dict(line.split("|", 1) for line in listed.split())
    return {j: states.get(j) == "COMPLETED" for j in job_ids}


def summary(root: Path, name: str) -> pd.DataFrame:
    frame = pd.read_parquet(root / "results" / name / "summary.parquet", columns=["level", "cell", "val_acc"])
    return frame.sort_values(["level", "cell"]).reset_index(drop=True)


@pytest.mark.slurm
@pytest.mark.slow
def test_workflow_on_slurm_equals_local_run(tmp_path: Path) -> None:
    partition = idle_partition()
    profile = cluster_profile(tmp_path / "profile", partition)
    name = f"slurmtest-{uuid.uuid4().hex[:8]}"
    local, cluster = workflow_copy(tmp_path / "local"), workflow_copy(tmp_path / "cluster")
    ctld_log = slurmctld_log()
    ctld_log_start = log_size(ctld_log)

    def command(root: Path, *args: str) -> list[str]:
        config = ["--config", f"name={name}", f"cache_dir={root / 'cache'}"]
        return [*SNAKEMAKE, *args, "--configfile", TINY, *config, "--", f"results/{name}/summary.parquet"]

    # The local reference runs alongside the SLURM run; every rule gets the same threads in both.
    with (tmp_path / "local.log").open("w") as local_log:
        local_run = subprocess.Popen(
            command(local, "--cores", "2"), cwd=local, stdout=local_log, stderr=local_log
        )
        try:
            cluster_run = subprocess.run(
                ["timeout", str(RUN_TIMEOUT_S), *command(cluster, "--profile", str(profile))],
                cwd=cluster,
                capture_output=True,
                text=True,
            )
            local_code = local_run.wait(timeout=RUN_TIMEOUT_S)
        finally:
            local_run.kill()
    cluster_out = cluster_run.stdout + cluster_run.stderr
    (tmp_path / "cluster.log").write_text(cluster_out)
    run_id = re.search(r"SLURM run ID: (\S+)", cluster_out)
    if cluster_run.returncode != 0 and run_id:  # leave no job of a killed run queued
        subprocess.run(["scancel", "--name", run_id.group(1)], check=False, timeout=30)
    assert cluster_run.returncode == 0, (
        f"SLURM run failed (rc {cluster_run.returncode}):\n{cluster_out[-6000:]}"
    )
    assert local_code == 0, (tmp_path / "local.log").read_text()[-6000:]

    # The jobs went through sbatch (training shards and the summary among them), each with its own SLURM
    # job id, and SLURM recorded every one as completed.
    submitted = re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+)/", cluster_out)
    rules = {rule for _, rule in submitted}
    assert "train_shard" in rules and "summarize" in rules, cluster_out[-6000:]
    job_ids = [job_id for job_id, _ in submitted]
    assert len(set(job_ids)) == len(job_ids)
    finished = completed_in_slurm(job_ids, ctld_log, ctld_log_start)
    assert all(finished.values()), f"jobs SLURM did not record as completed: {finished}"

    pd.testing.assert_frame_equal(summary(cluster, name), summary(local, name))
    assert len(summary(cluster, name)) > 0
