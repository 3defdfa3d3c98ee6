"""``syncd doctor``: read-only checks of the configuration against the real services, each with a
verdict and, when it fails, the exact configuration lines that fix it.

Nothing is changed anywhere: the sources are only read (one small page of employees), and WORKBOX
gets one DELETE per kind of a key that cannot exist (``syncd-doctor-<random>``), which it answers
"unknown key" when everything is right.  Modules: :mod:`.check` (what a check is), :mod:`.database`,
:mod:`.infinityhr`, :mod:`.whosoff`, :mod:`.workbox`.
"""

from __future__ import annotations

from syncd.doctor.check import Check, run_doctor

__all__ = ["Check", "run_doctor"]
