"""Map a plain-English cost request to a skill and its filters, without a model.

The rules are keyword patterns, checked in a fixed order:

1. "credit", "adjustment", "refund" or "correction" selects the credits skill.
2. "by tag KEY" or "tag KEY" groups by that tag key.
3. "by|per|for each|across WORD" groups by provider, service, month, region or
   account when WORD names one, and otherwise by the tag key WORD
   ("cost by environment").
4. "top N" (default 5) ranks services, or providers when "provider" occurs.
5. "monthly" or "trend" groups by month; a bare "services" or "providers" groups
   by that; any other mention of cost or spend returns the total.

Filters: a provider name or alias ("AWS", "Azure", "GCP") and a month
("2024-09", "September 2024"). "effective" or "amortized" switches the measure
to EffectiveCost and "list cost" to ListCost.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_MEASURE = "BilledCost"
DEFAULT_TOP = 5
# Longer rankings stop being a summary; records of a full breakdown have them all.
MAX_TOP = 50
PROVIDER_ALIASES = {
    "aws": "AWS",
    "amazon": "AWS",
    "azure": "Microsoft",
    "microsoft": "Microsoft",
    "gcp": "Google Cloud",
    "google": "Google Cloud",
    "oci": "Oracle",
    "oracle": "Oracle",
}
DIMENSION_WORDS = {
    "provider": "provider",
    "providers": "provider",
    "cloud": "provider",
    "clouds": "provider",
    "vendor": "provider",
    "service": "service",
    "services": "service",
    "month": "month",
    "months": "month",
    "region": "region",
    "regions": "region",
    "account": "account",
    "accounts": "account",
    "subaccount": "account",
    "sub-account": "account",
}
# Words after "by" that describe the measure, not a grouping ("top 5 by cost").
MEASURE_WORDS = frozenset(
    {"cost", "costs", "spend", "spending", "amount", "billed", "effective", "list"}
)
NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
}  # fmt: skip
MONTH_NAMES = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip

CREDITS_PATTERN = re.compile(r"\b(credit|adjustment|refund|correction)s?\b")
QUOTED_TAG_PATTERN = re.compile(r"\btags?\s+(?:key\s+)?[:=]?\s*[\"']([^\"']+)[\"']")
TAG_PATTERN = re.compile(r"\btags?\s+(?:key\s+)?[:=]?\s*([\w.:/@+-]+)")
BY_PATTERN = re.compile(r"\b(?:by|per|for each|across|each)\s+(?:the\s+)?([\w.:/@+-]+)")
TOP_PATTERN = re.compile(r"\btop\s*(\d+|" + "|".join(NUMBER_WORDS) + r")?\b")
ISO_MONTH_PATTERN = re.compile(r"\b(\d{4})-(0[1-9]|1[0-2])\b")
NAMED_MONTH_PATTERN = re.compile(
    r"\b(" + "|".join(MONTH_NAMES) + r")[a-z]*\.?\s+(\d{4})\b"
)
TOTAL_PATTERN = re.compile(
    r"\b(total|spend|spent|spending|costs?|bill|billed|how much|expenses?)\b"
)


@dataclass(frozen=True)
class CostQuery:
    """One request mapped to a skill id plus its filters."""

    skill: str
    measure: str = DEFAULT_MEASURE
    provider: str | None = None
    month: str | None = None
    tag_key: str | None = None
    limit: int | None = None


def parse_query(text: str, providers: Iterable[str] = ()) -> CostQuery | None:
    """Map `text` to a query, or return None when no skill fits.

    `providers` are the ProviderName values in the data, so a provider outside
    the alias list can be named too.
    """
    lowered = " ".join(text.lower().split())
    provider = find_provider(lowered, providers)
    filters = {
        "measure": find_measure(lowered),
        "provider": provider,
        "month": find_month(lowered),
    }
    if CREDITS_PATTERN.search(lowered):
        return CostQuery("credits", **filters)
    tag_key = find_tag_key(lowered)
    if tag_key is not None:
        return CostQuery("cost_by_tag", tag_key=tag_key, **filters)
    top = find_top(lowered)
    dimension = find_dimension(lowered, providers)
    if dimension is not None and dimension[0] == "tag":
        return CostQuery("cost_by_tag", tag_key=dimension[1], **filters)
    if dimension is None and top is not None:
        dimension = ("provider", "") if "provider" in lowered else ("service", "")
    if dimension is None:
        dimension = _dimension_from_keywords(lowered)
    if dimension is not None:
        name = dimension[0]
        if name == "service" and top is not None:
            return CostQuery("top_services", limit=top, **filters)
        return CostQuery(f"cost_by_{name}", limit=top, **filters)
    if TOTAL_PATTERN.search(lowered) or provider is not None:
        return CostQuery("total_cost", **filters)
    return None


def find_measure(lowered: str) -> str:
    if re.search(r"\b(effective|amorti[sz]ed)\b", lowered):
        return "EffectiveCost"
    if re.search(r"\blist (cost|price)s?\b", lowered):
        return "ListCost"
    return DEFAULT_MEASURE


def find_provider(lowered: str, providers: Iterable[str]) -> str | None:
    """Return the provider named in the text, as the data spells it."""
    known = {name.casefold(): name for name in providers}
    for name, spelled in known.items():
        if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", lowered):
            return spelled
    for alias, canonical in PROVIDER_ALIASES.items():
        if re.search(rf"\b{alias}\b", lowered):
            for name, spelled in known.items():
                if canonical.casefold() in name or name in canonical.casefold():
                    return spelled
            return canonical
    return None


def find_month(lowered: str) -> str | None:
    """Return the `YYYY-MM` month named in the text."""
    match = ISO_MONTH_PATTERN.search(lowered)
    if match:
        return f"{match.group(1)}-{match.group(2)}"
    match = NAMED_MONTH_PATTERN.search(lowered)
    if match:
        return f"{match.group(2)}-{MONTH_NAMES[match.group(1)]:02d}"
    return None


def find_tag_key(lowered: str) -> str | None:
    """Return the key after "tag" ("" when "by tag" names none), or None.

    Keys are compared without regard to case, so the lowercase text suffices.
    """
    match = QUOTED_TAG_PATTERN.search(lowered) or TAG_PATTERN.search(lowered)
    if match:
        key = match.group(1).strip()
        return "" if key in MEASURE_WORDS else key
    if re.search(r"\btags?\b", lowered):
        return ""
    return None


def find_top(lowered: str) -> int | None:
    """Return N of "top N", DEFAULT_TOP for a bare "top", clamped to 1..MAX_TOP."""
    match = TOP_PATTERN.search(lowered)
    if not match:
        return None
    word = match.group(1)
    if word is None:
        return DEFAULT_TOP
    number = NUMBER_WORDS.get(word) or int(word)
    return max(1, min(number, MAX_TOP))


def find_dimension(lowered: str, providers: Iterable[str]) -> tuple[str, str] | None:
    """Return (dimension, tag key) for the first usable "by WORD" in the text."""
    provider_names = {name.casefold() for name in providers} | set(PROVIDER_ALIASES)
    for match in BY_PATTERN.finditer(lowered):
        word = match.group(1)
        if word in DIMENSION_WORDS:
            return DIMENSION_WORDS[word], ""
        if word in ("monthly", "day", "year") or word in MEASURE_WORDS:
            continue
        if word in provider_names or ISO_MONTH_PATTERN.fullmatch(word):
            continue
        return "tag", word
    return None


def _dimension_from_keywords(lowered: str) -> tuple[str, str] | None:
    if re.search(r"\b(monthly|trend|month over month|each month)\b", lowered):
        return "month", ""
    if re.search(r"\bservices\b", lowered):
        return "service", ""
    if re.search(r"\bproviders\b", lowered):
        return "provider", ""
    if re.search(r"\bregions\b", lowered):
        return "region", ""
    return None
