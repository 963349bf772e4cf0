"""Gating a tag on kABI compatibility through a real ``koji tag-build``.

The test hub's tag policy gates ``kit-*-gated`` with ``kabi_compatible !! deny …``; the
main scenario's rules pair its gated tag with the main kernel tag, whose latest kernel
breaks kmod-crc and keeps kmod-ok loadable.
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import MainWorld

pytestmark = [pytest.mark.integration, pytest.mark.koji_phase("full")]


def test_tag_build_refuses_a_broken_kmod_and_takes_a_compatible_one(
        main_world: MainWorld) -> None:
    w = main_world
    gated = w.names["gated"]
    refused = w.kit.rk.koji("tag-build", "--wait", gated, w.series.kmod_nvr["kmod-crc"])
    assert refused.returncode != 0, refused
    assert "policy violation (tag)" in refused.stderr, refused
    assert "kmod does not match the kABI of the kernel in this tag" in refused.stderr
    allowed = w.kit.rk.koji("tag-build", "--wait", gated, w.series.kmod_nvr["kmod-ok"])
    assert allowed.returncode == 0, allowed
    tagged = {b["nvr"] for b in w.kit.admin.listTagged(gated)}
    assert w.series.kmod_nvr["kmod-ok"] in tagged
    assert w.series.kmod_nvr["kmod-crc"] not in tagged
