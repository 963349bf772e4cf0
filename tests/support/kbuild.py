"""Build a real out-of-tree kernel module with kbuild against installed kernel headers.

Hand-made ELF files only test what their author thought of; a module linked by the
kernel's own build system has every section the real ones have (here a ``.bss`` far
larger than the file, which is SHT_NOBITS and so occupies no bytes in it).  The headers
tree is chosen by its ``.config`` (arch of this machine) and its release (the newest),
never by ``uname -r``: the running kernel is often not the distribution's.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

HEADER_GLOBS = ("/usr/src/linux-headers-*", "/usr/src/kernels/*")  # Debian/Ubuntu, Fedora/RHEL
BSS_SIZE = 8 << 20
MODULE_NAME = "kabi_bigbss"

# .config lines that say which machine a headers tree builds for
_ARCH_CONFIG = {
    "x86_64": ("CONFIG_X86_64=y",),
    "i686": ("CONFIG_X86_32=y",),
    "aarch64": ("CONFIG_ARM64=y",),
    "ppc64le": ("CONFIG_PPC64=y", "CONFIG_CPU_LITTLE_ENDIAN=y"),
    "ppc64": ("CONFIG_PPC64=y", "CONFIG_CPU_BIG_ENDIAN=y"),
    "s390x": ("CONFIG_S390=y",),
}
_MACHINE_ALIASES = {"amd64": "x86_64", "arm64": "aarch64", "i386": "i686", "i586": "i686"}

MODULE_SOURCE = f"""\
// SPDX-License-Identifier: GPL-2.0
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>

static char big_buffer[{BSS_SIZE}];  /* zero-initialised: .bss, SHT_NOBITS */
static void *scratch;

static int __init kabi_bigbss_init(void)
{{
	scratch = kmalloc(64, GFP_KERNEL);
	if (!scratch)
		return -ENOMEM;
	memset(big_buffer, 0x5a, sizeof(big_buffer));
	pr_info("kabi_bigbss: %zu bytes, first %d\\n", sizeof(big_buffer), big_buffer[0]);
	return 0;
}}

static void __exit kabi_bigbss_exit(void)
{{
	kfree(scratch);
}}

module_init(kabi_bigbss_init);
module_exit(kabi_bigbss_exit);
MODULE_LICENSE("GPL");
MODULE_VERSION("1.0");
MODULE_DESCRIPTION("koji-kabi test module with a large .bss");
"""


@dataclass(frozen=True)
class Headers:
    path: Path
    release: str  # the tree's name, e.g. 6.1.0-57-amd64 or 5.14.0-427.el9.x86_64
    arch: str  # normalised machine, e.g. x86_64
    compiler: str  # what the kernel was built with (Debian pins gcc-12 and so on)


@dataclass(frozen=True)
class Built:
    ko: Path
    headers: Headers
    seconds: float


def machine() -> str:
    m = platform.machine()
    return _MACHINE_ALIASES.get(m, m)


def _release_key(release: str) -> tuple:
    """Natural order, so 6.1.0-57 sorts after 6.1.0-9."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.findall(r"\d+|[^\d.\-_+]+",
                                                                          release))


def _config(tree: Path) -> str:
    for name in (".config", "include/config/auto.conf"):
        try:
            return (tree / name).read_text(errors="replace")
        except OSError:
            continue
    return ""


def _headers_arch(config: str) -> Optional[str]:
    lines = set(config.splitlines())
    for arch, needed in _ARCH_CONFIG.items():
        if all(n in lines for n in needed):
            return arch
    return None


def _compiler(config: str) -> str:
    """The compiler named by CONFIG_CC_VERSION_TEXT (e.g. ``gcc-12``), else ``gcc``."""
    m = re.search(r'^CONFIG_CC_VERSION_TEXT="(\S+)', config, re.M)
    name = m.group(1) if m else "gcc"
    return name if re.fullmatch(r"[\w.+-]*(gcc|clang)[\w.+-]*", name) else "gcc"


def find_headers(arch: Optional[str] = None,
                 globs: Iterable[str] = HEADER_GLOBS) -> Union[Headers, str]:
    """The newest kbuild tree for ``arch`` (default: this machine), or why there is none."""
    arch = arch or machine()
    seen = []
    found = []
    for pattern in globs:
        for tree in sorted(Path("/").glob(pattern.lstrip("/"))):
            if not (tree / "Makefile").is_file() or not (tree / "Module.symvers").is_file():
                continue  # e.g. Debian's linux-headers-*-common half
            config = _config(tree)
            tree_arch = _headers_arch(config)
            seen.append(f"{tree} ({tree_arch or 'unknown arch'})")
            if tree_arch != arch:
                continue
            if "CONFIG_MODVERSIONS=y" not in config.splitlines():
                seen[-1] += " without CONFIG_MODVERSIONS"
                continue
            release = tree.name.removeprefix("linux-headers-")
            found.append(Headers(tree, release, arch, _compiler(config)))
    if not found:
        where = ", ".join(seen) if seen else "none in " + " ".join(globs)
        return (f"no kernel headers with Makefile, Module.symvers and CONFIG_MODVERSIONS for "
                f"{arch} (found: {where}); scripts/bootstrap.sh --test installs them")
    return max(found, key=lambda h: _release_key(h.release))


def locate() -> Union[Headers, str]:
    """Headers plus the tools kbuild runs, or a reason naming what is missing."""
    headers = find_headers()
    if isinstance(headers, str):
        return headers
    missing = [t for t in ("make", headers.compiler) if shutil.which(t) is None]
    if missing:
        return (f"{' and '.join(missing)} not installed (needed to build against "
                f"{headers.path}; scripts/bootstrap.sh --test installs them)")
    return headers


def build_module(headers: Headers, workdir: Path, source: str = MODULE_SOURCE,
                 name: str = MODULE_NAME, timeout: float = 600) -> Built:
    """Write ``source`` as ``name.c`` into ``workdir``, run kbuild, return the ``.ko``."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / f"{name}.c").write_text(source)
    (workdir / "Kbuild").write_text(f"obj-m := {name}.o\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("ARCH", "CROSS_COMPILE", "KBUILD_OUTPUT", "MAKEFLAGS", "MFLAGS")}
    start = time.monotonic()
    proc = subprocess.run(
        ["make", "-C", str(headers.path), f"M={workdir}", f"-j{os.cpu_count() or 1}", "modules"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    seconds = time.monotonic() - start
    ko = workdir / f"{name}.ko"
    if proc.returncode != 0 or not ko.is_file():
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        raise RuntimeError(f"kbuild against {headers.path} failed "
                           f"(exit {proc.returncode}):\n{tail}")
    return Built(ko, headers, seconds)
