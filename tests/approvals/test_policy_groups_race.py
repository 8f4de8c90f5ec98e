"""A policy save and the delete of the group it names, racing: never a policy routed to nobody.

Both lock the group row first, so one waits for the other and then sees its commit.
"""

import pytest
from django.contrib.auth.models import Group

from approvals.errors import ValidationFailed
from approvals.models import Policy
from approvals.policy_groups import GroupInUse
from approvals.services.policies import policy_save
from tests.approvals.test_concurrency import race

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_policy_save_racing_a_group_delete_never_leaves_a_policy_naming_no_group():
    for round_ in range(8):
        group = Group.objects.create(name=f"finance-{round_}")
        document = {"name": f"payouts-{round_}", "effect": "block", "approvers": group.name}

        results = race(
            [
                lambda document=document: policy_save(document=document, actor="test"),
                lambda pk=group.pk: Group.objects.filter(pk=pk).delete(),
            ]
        )

        saved = Policy.objects.filter(name=document["name"]).exists()
        kept = Group.objects.filter(pk=group.pk).exists()
        assert saved == kept, results
        assert isinstance(results[0], ValidationFailed) or isinstance(results[1], GroupInUse), (
            results
        )
