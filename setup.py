"""koji-kabi: kABI tracking for Koji (core library, hub/builder/CLI plugins)."""

from setuptools import find_packages, setup

setup(
    name="koji-kabi",
    version="0.1.0",
    description="Watch kernel builds in Koji, compute kABI deltas, rebuild and gate kmods",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="GPL-2.0-or-later",
    python_requires=">=3.9",
    packages=find_packages(include=["koji_kabi", "koji_kabi.*", "koji_kabi_hub",
                                    "koji_kabi_builder", "cli_plugin"]),
    install_requires=["koji", "rpm", "pyyaml", "requests"],
    entry_points={"console_scripts": ["koji-kabi = koji_kabi.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Software Development :: Build Tools",
    ],
)
