# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The attributes every read-only module of the collection shares."""

from __future__ import annotations


class ModuleDocFragment(object):
    # A module that only reads the node: check mode runs it, and there is nothing to diff.
    READ_ONLY = r"""
attributes:
  check_mode:
    support: full
    description: It only reads, so check mode runs it as a normal run.
  diff_mode:
    support: none
    description: It changes nothing, so there is no diff.
"""
