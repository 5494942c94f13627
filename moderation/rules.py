"""The class ladder rule: which member class a member's figures earn. Pure functions, no
Django import (the ratio is ``reputation.policy.ratio``, also pure);
``moderation.services.classes`` feeds them the settings and the ledger."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reputation.policy import ratio as share_ratio

BASE_CLASS = "user"


@dataclass(frozen=True, slots=True)
class ClassRule:
    """One rung of the ladder above ``user``.

    ``min_uploaded`` is bytes, ``min_ratio`` uploaded/downloaded, ``min_age_days`` days since
    the account was made; ``demote_ratio`` (at most ``min_ratio``) is the ratio floor below
    which a member holding this class loses it.
    """

    member_class: str
    min_uploaded: int
    min_ratio: float
    min_age_days: int
    demote_ratio: float


def parse_rules(
    raw: Sequence[Mapping[str, Any]], *, known_classes: Sequence[str]
) -> list[ClassRule]:
    """Read ``PBTS_CLASS_RULES`` (a list of dicts with ``class``, ``min_uploaded``,
    ``min_ratio``, ``min_age_days`` and optional ``demote_ratio``, lowest rung first).

    Raises:
        ValueError: an unknown or repeated class, ``user`` as a rung, a negative figure, a
            ``demote_ratio`` above ``min_ratio``.
    """
    rules: list[ClassRule] = []
    for item in raw:
        name = str(item["class"])
        if name == BASE_CLASS or name not in known_classes:
            raise ValueError(f"PBTS_CLASS_RULES: {name!r} is not a class the ladder can hold.")
        if any(rule.member_class == name for rule in rules):
            raise ValueError(f"PBTS_CLASS_RULES: {name!r} is listed twice.")
        min_ratio = float(item.get("min_ratio", 0.0))
        rule = ClassRule(
            member_class=name,
            min_uploaded=int(item.get("min_uploaded", 0)),
            min_ratio=min_ratio,
            min_age_days=int(item.get("min_age_days", 0)),
            demote_ratio=float(item.get("demote_ratio", min_ratio)),
        )
        if min(rule.min_uploaded, rule.min_age_days) < 0 or min(min_ratio, rule.demote_ratio) < 0:
            raise ValueError(f"PBTS_CLASS_RULES: {name!r} has a negative figure.")
        if rule.demote_ratio > rule.min_ratio:
            raise ValueError(f"PBTS_CLASS_RULES: {name!r}'s demote_ratio is above its min_ratio.")
        rules.append(rule)
    return rules


def ladder(rules: Sequence[ClassRule]) -> list[str]:
    """The classes the rules may change, lowest first: ``user`` then each rung."""
    return [BASE_CLASS, *(rule.member_class for rule in rules)]


def _ratio(uploaded: int, downloaded: int) -> float:
    # The site's ratio (reputation.policy.ratio); nothing downloaded counts as infinite.
    value = share_ratio(uploaded, downloaded)
    return float("inf") if value is None else value


def earned_class(
    *, rules: Sequence[ClassRule], uploaded: int, downloaded: int, age_days: float
) -> str:
    """The highest rung whose three minimums the figures meet (``user`` when none)."""
    ratio = _ratio(uploaded, downloaded)
    earned = BASE_CLASS
    for rule in rules:
        if (
            uploaded >= rule.min_uploaded
            and ratio >= rule.min_ratio
            and age_days >= rule.min_age_days
        ):
            earned = rule.member_class
    return earned


def next_class(
    *, rules: Sequence[ClassRule], current: str, uploaded: int, downloaded: int, age_days: float
) -> str:
    """The class a member holding ``current`` should have now.

    Promotion: to the earned class when it is higher. Demotion: a member above their earned
    class keeps ``current`` while their ratio stays at or above its ``demote_ratio`` (upload
    and age only grow, so only the ratio takes a class away); below it they drop to the
    earned class. A class outside the ladder is returned unchanged.
    """
    order = ladder(rules)
    if current not in order:
        return current
    earned = earned_class(rules=rules, uploaded=uploaded, downloaded=downloaded, age_days=age_days)
    if order.index(earned) >= order.index(current):
        return earned
    rule = next(rule for rule in rules if rule.member_class == current)
    if _ratio(uploaded, downloaded) >= rule.demote_ratio:
        return current
    return earned
