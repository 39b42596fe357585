"""Hypothesis profiles: examples per check. Kept apart from the runner so the CLI can list them without importing Hypothesis."""

from __future__ import annotations

import os

# dev: a quick look (the whole suite well under two minutes on two cores); ci: what CI runs; thorough: before a release.
PROFILES = {"dev": 12, "ci": 60, "thorough": 400}
PROFILE_ENV = "TSPEC_PROFILE"


def default_profile() -> str:
    profile = os.environ.get(PROFILE_ENV, "dev")
    if profile not in PROFILES:
        raise ValueError(f"{PROFILE_ENV}={profile!r} is not a profile; expected one of {', '.join(PROFILES)}")
    return profile
