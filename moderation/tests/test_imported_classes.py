"""Class rules count imported reputation as the site's ratio rule does
(``reputation.policy.site_figures``, docs/chain.md)."""

from __future__ import annotations

import pytest

from moderation.services.classes import class_rules_apply
from moderation.tests.test_classes import GIB, NOW, _member
from reputation.services import ledger_credit_imported


@pytest.mark.django_db
def test_imported_upload_counts_for_promotion_within_the_cap(settings):
    settings.PBTS_IMPORTED_UPLOAD_CAP_BYTES = 0
    # 5 GiB up / 20 GiB down here: no promotion; 25 GiB up / 0 imported: 30 / 20 = 1.5.
    member = _member(uploaded=5 * GIB, downloaded=20 * GIB, age_days=60)
    assert class_rules_apply(now=NOW) == {}
    ledger_credit_imported(member_id=member.pk, uploaded=25 * GIB, downloaded=0)
    settings.PBTS_IMPORTED_UPLOAD_COUNTS = False
    assert class_rules_apply(now=NOW) == {}  # switched off: not counted
    settings.PBTS_IMPORTED_UPLOAD_COUNTS = True
    settings.PBTS_IMPORTED_UPLOAD_CAP_BYTES = 5 * GIB
    assert class_rules_apply(now=NOW) == {}  # capped: 10 GiB up
    settings.PBTS_IMPORTED_UPLOAD_CAP_BYTES = 0
    assert class_rules_apply(now=NOW) == {("user", "power_user"): 1}
