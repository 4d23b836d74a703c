"""Views: run reports (text, markdown, json, html), plans and diagnostics.

The package is also the library's ``runner.report(campaign_path, ...)``: once any of its modules
is imported, Python binds ``runner.report`` to this package, so the package itself is callable
(it calls ``runner.report.api.report``) and both spellings mean the same.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallablePackage(types.ModuleType):
    def __call__(self, campaign_path: Any, **options: Any) -> Any:
        from runner.report.api import report

        return report(campaign_path, **options)


sys.modules[__name__].__class__ = _CallablePackage
