"""The edge the three plugins share: reading Koji (views, the cache), the checks whoever
asks, the ``kabiCheck`` pipeline, settings, rules and messages.  Only Koji's client
library is used here, never its hub or builder code."""
