"""Readers: bytes on disk or over HTTP (RPM headers, symvers, ``.ko`` files, stablelists,
``rpm -q`` dumps) into the core's values, each a value or one clear error."""
