"""koji-kabi: kABI tracking for Koji (core library, hub/builder/CLI plugins).

Besides the Python packages, this installs the plugin entry modules where Koji looks by
default when the prefix is /usr: ``<prefix>/lib/koji-hub-plugins/kabi_hub.py``,
``<prefix>/lib/koji-builder-plugins/kabi_builder.py``, and the CLI plugin as
``koji_cli_plugins/kabi.py`` in site-packages (which the koji CLI always loads).
"""

import re
import sys
from pathlib import Path

from setuptools import setup

setup(
    name="koji-kabi",
    # one version: koji_kabi.__version__ (koji-kabi.spec's Version is tested against it)
    version=re.search(r'^__version__ = "([^"]+)"', Path("koji_kabi/__init__.py").read_text(
        encoding="utf-8"), re.M).group(1),
    description="Watch kernel builds in Koji, compute kABI deltas, rebuild and gate kmods",
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="GPL-2.0-or-later",
    python_requires=">=3.9",
    packages=["koji_kabi", "koji_kabi.readers", "koji_kabi.analysis", "koji_kabi.koji",
              "koji_kabi.report", "koji_kabi_hub", "koji_kabi_builder"],
    package_data={"koji_kabi.koji": ["message.schema.json"],
                  "koji_kabi.report": ["result.schema.json"]},
    install_requires=["koji", "rpm", "pyyaml", "requests"],
    data_files=[
        ("lib/koji-hub-plugins", ["koji_kabi_hub/kabi_hub.py"]),
        ("lib/koji-builder-plugins", ["koji_kabi_builder/kabi_builder.py"]),
        # where the koji CLI looks, <sys.prefix>/lib/pythonX.Y/site-packages/koji_cli_plugins
        # (kabi.py only: koji's own package owns that directory and its __init__.py)
        ("lib/python%d.%d/site-packages/koji_cli_plugins" % sys.version_info[:2],
         ["cli_plugin/kabi.py"]),
        ("share/koji-kabi", ["koji_kabi_hub/kabi-schema.sql",
                              "koji_kabi_hub/kabi-schema-upgrade.sql"]),
        ("share/koji-kabi/conf", ["conf/kabi-hub.conf", "conf/kabi-builder.conf",
                                  "conf/rules.yaml", "conf/hub.conf.example",
                                  "conf/kojid.conf.example", "conf/koji-cli.conf.example"]),
    ],
    entry_points={"console_scripts": ["koji-kabi = koji_kabi.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Software Development :: Build Tools",
    ],
)
