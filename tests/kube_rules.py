"""Kubernetes' own scheduling rules, restated for tests that check rendered manifests against them."""

from __future__ import annotations

from typing import Any


def tolerates(toleration: dict[str, Any], taint: dict[str, Any]) -> bool:
    """Kubernetes' Toleration.ToleratesTaint (https://github.com/kubernetes/api/blob/master/core/v1/toleration.go):
    the effect (if given) and the key (if given) match, then Exists matches any value and Equal (the
    default) the value. A taint whose value or effect is None is one bioinfra does not fix (any
    value/effect): only a toleration that names neither covers it."""
    if toleration.get("effect") and toleration["effect"] != taint["effect"]:
        return False
    if toleration.get("key") and toleration["key"] != taint["key"]:
        return False
    if toleration.get("operator", "Equal") == "Exists":
        return True
    return taint["value"] is not None and toleration.get("value", "") == taint["value"]
