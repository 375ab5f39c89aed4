"""The registered architectures in two sets by cost: LIGHT ones are built in the fast suite, HEAVY ones (over 30M
parameters or 200 blocks) only in the slow tests (test_zoo, test_plan_facts, test_engines_agree, test_plain_twins)."""

from resnet_cli import get_spec, list_archs
from resnet_cli.plan import plan_model


def _is_light(name: str) -> bool:
    spec = get_spec(name)
    return plan_model(spec).params <= 30_000_000 and spec.num_blocks <= 200


LIGHT = [n for n in list_archs() if _is_light(n)]
HEAVY = [n for n in list_archs() if not _is_light(n)]
