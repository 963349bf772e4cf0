"""Test-support helpers: real RPM fixtures (rpmfactory) and independent oracles (oracle)."""
