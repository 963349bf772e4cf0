"""Hub plugin of koji-kabi.  The entry module the hub loads by name is
:mod:`koji_kabi_hub.kabi_hub`; all kABI logic lives in :mod:`koji_kabi`."""
