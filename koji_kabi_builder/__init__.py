"""kojid plugin of koji-kabi: the ``kabiCheck`` task.  The entry module kojid loads by
name is :mod:`koji_kabi_builder.kabi_builder`; all kABI logic lives in :mod:`koji_kabi`."""
