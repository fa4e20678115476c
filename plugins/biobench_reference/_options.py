"""The reference plugin checks its options with the harness's public helpers (one wording)."""

from biobench.api import as_bool, as_choice, as_float, as_int, as_numbers, reject_unknown

__all__ = ["as_bool", "as_choice", "as_float", "as_int", "as_numbers", "reject_unknown"]
