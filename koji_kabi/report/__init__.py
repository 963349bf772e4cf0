"""Reports: the result values as text for people, JSON for machines and HTML pages."""
