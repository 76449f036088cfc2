# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Reading inventory values the way the checks need them."""

from __future__ import annotations


def whole_number(value):
    """An int from an int or a string of digits ("9000", 9000); None for anything else (True, "9k", 9.5, None)."""
    if isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None
