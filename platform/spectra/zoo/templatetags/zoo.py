"""``{% zoo_preparation %}``: the zoo's preparation progress, on any page (home, zoo) without a view change."""
from __future__ import annotations

from django import template

from spectra.zoo.selectors import zoo_preparation_progress

register = template.Library()


@register.inclusion_tag("zoo/preparation.html")
def zoo_preparation() -> dict:
    return {"progress": zoo_preparation_progress()}
