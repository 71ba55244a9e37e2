"""The CronJob's job-level limits: how many pipelines run at once and when a job stops starting new ones."""

from __future__ import annotations

from deploy_helpers import find
from test_manifests import duration_seconds, env_map, sync_container

SCHEDULE_SECONDS = 300  # */5 * * * *, checked in test_manifests
SLING_PEAK_MB = 125  # Sling's RSS copying 1M rows (docs/PERFORMANCE.md, cronjob.yaml)


def test_concurrency_is_explicit_and_fits_the_memory_limit(rendered):
    c = sync_container(find(rendered, "CronJob", "sling-sync"))
    n = int(env_map(c)["SYNC_CONCURRENCY"])
    assert 1 <= n <= 64
    limit_mi = int(c["resources"]["limits"]["memory"].removesuffix("Mi"))
    assert n * SLING_PEAK_MB < limit_mi, f"{n} Sling processes at ~{SLING_PEAK_MB} MB do not fit in {limit_mi}Mi"


def test_job_deadline_is_a_little_under_the_schedule(rendered):
    cj = find(rendered, "CronJob", "sling-sync")
    assert cj["spec"]["schedule"] == "*/5 * * * *"
    deadline = duration_seconds(env_map(sync_container(cj))["SYNC_JOB_DEADLINE"])
    assert SCHEDULE_SECONDS * 0.6 <= deadline < SCHEDULE_SECONDS, deadline
