"""Two kernels landing together on the real hub: their checks run at once on kojid and
still give one rebuild per kmod and kABI (the hub's claims decide)."""

from __future__ import annotations

import pytest

from tests.integration.conftest import names
from tests.integration.kit import CLOSED, Kit, note
from tests.integration.worlds import X86, build_series, source_for

pytestmark = [pytest.mark.integration, pytest.mark.koji_phase("full")]
KMODS = ("kmod-pa", "kmod-pb")


def test_two_kernels_with_the_same_kabi_give_one_rebuild_each(koji_phase: Kit, rpm_dirs,
                                                              realkoji) -> None:
    kit = koji_phase
    out, cache = rpm_dirs
    s = build_series(out, cache, realkoji.stamp, "pair", 21, (X86,), 120,
                     {k: {X86: [f"stable:{i * 5}:{i * 5 + 5}", f"changed:{i}:{i + 1}"]}
                      for i, k in enumerate(KMODS)}, kernels=3)
    n = names("pair")
    kit.baseline(n, s.kernels["K1"], s.kmods, lambda name: source_for(name, s.stamp))
    # K2 and K3 differ only in a symbol no kmod consumes: the same kABI for both kmods
    together = [kit.cg_build(s.kernels[k], source_for("kernel", s.stamp)) for k in ("K2", "K3")]
    for b in together:
        kit.tag_build(n["kernel"], b["id"])
    tasks = [kit.wait_kabi(b["id"])[0] for b in together]
    assert all(t["state"] == CLOSED for t in tasks)
    overlap = min(t["completion_ts"] for t in tasks) - max(t["start_ts"] for t in tasks)
    note(f"two kernels together: checks {tasks[0]['id']} and {tasks[1]['id']} ran "
         f"{'at once' if overlap > 0 else 'one after the other'} (overlap {overlap:.1f}s)")
    for t in tasks:  # both compare with P1: the tag as it was when each was created
        assert kit.admin.getTaskResult(t["id"])["previous"] == s.kernel_nvr["K1"]
    sources = [c["request"][0] for t in tasks for c in kit.rebuilds(t["id"])]
    assert sorted(sources) == sorted(source_for(k, s.stamp) for k in KMODS)
    statuses = sorted(r["status"] for t in tasks for r in kit.report(t["id"])["rebuilds"])
    assert statuses == ["duplicate", "duplicate", "submitted", "submitted"]
