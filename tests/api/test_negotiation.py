"""The content negotiation's shortcut picks what DRF's own negotiation picks."""

from __future__ import annotations

import pytest
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from cwom.api.negotiation import CwomContentNegotiation
from cwom.api.renderers import CwomJSONRenderer

ACCEPTS = [None, "", "*/*", "application/json", "application/*", "text/html", "text/html, */*;q=0.8"]


@pytest.mark.parametrize("renderers", [[CwomJSONRenderer()], [CwomJSONRenderer(), BrowsableAPIRenderer()]])
@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("query", ["", "?format=api", "?format=json"])
def test_the_shortcut_agrees_with_drf(renderers: list[object], accept: str | None, query: str) -> None:
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().get(f"/api/v1/repos{query}", **headers))

    def pick(negotiation: DefaultContentNegotiation) -> object:
        try:
            renderer, media_type = negotiation.select_renderer(request, renderers)
        except Exception as error:  # noqa: BLE001 - the refusal is compared too
            return type(error)
        return type(renderer), media_type

    assert pick(CwomContentNegotiation()) == pick(DefaultContentNegotiation())
