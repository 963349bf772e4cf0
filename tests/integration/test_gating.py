"""Gating a tag on kABI compatibility through a real ``koji tag-build``.

The test hub's tag policy gates ``kit-*-gated`` with ``kabi_compatible !! deny …``; the
main scenario's rules pair its gated tag with the main kernel tag, whose latest kernel
breaks kmod-crc and keeps kmod-ok loadable.
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import MainWorld
from tests.integration.worlds import X86, source_for
from tests.support import rpmfactory as rf

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


def test_the_refusal_names_the_kernel_the_counts_and_the_command(
        main_world: MainWorld) -> None:
    """With Koji's VerbosePolicy (KojiDebug here), the refused user reads why."""
    w = main_world
    nvr = w.series.kmod_nvr["kmod-crc"]
    refused = w.kit.rk.koji("tag-build", "--wait", w.names["gated"], nvr)
    kernel = w.kit.anon.getLatestBuilds(w.names["kernel"], package="kernel")[0]["nvr"]
    assert f"{nvr} does not match {kernel}: x86_64 0 missing, 2 CRC mismatches" in \
        refused.stderr, refused
    assert f"koji kabi-check {nvr} --tag {w.names['gated']} shows the symbols" in refused.stderr


def test_a_kmod_broken_on_one_arch_is_refused_whatever_its_other_arches(
        main_world: MainWorld, rpm_dirs) -> None:
    """x86_64 definitely breaks; the kernel has no ppc64le at all ("cannot decide" for
    that package): the gate fails closed."""
    w = main_world
    s = w.series
    k1 = s.tables["K1"][X86]
    changed = s.changed[X86][:2]
    build = rf.kmod_build("kmod-xarch", "1.0", f"1.{s.stamp}.el9", per_arch={
        X86: {c: k1[c] for c in changed}, "ppc64le": {c: k1[c] for c in changed}},
        kver=f"5.14.0-1.{s.stamp}.el9.{{arch}}")
    out, cache = rpm_dirs
    paths = rf.build_rpms(build, out / "xarch", cache_dir=cache)
    w.kit.listed(w.names["gated"], "kmod-xarch")
    w.kit.cg_build(paths, source_for("kmod-xarch", s.stamp))
    refused = w.kit.rk.koji("tag-build", "--wait", w.names["gated"], build.nvr)
    assert refused.returncode != 0 and "policy violation (tag)" in refused.stderr, refused
    assert "x86_64 0 missing, 2 CRC mismatches" in refused.stderr
