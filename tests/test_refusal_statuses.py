"""The sign-in page and the API answer the same refusal with the same status and sentence
(one table, edge_errors.py)."""
from __future__ import annotations

import html

import pytest

from edge_errors import STATUS
from mfa import errors
from tests.conftest import PASSWORD
from tests.helpers import post_form


def lock(api, username):
    for _ in range(10):
        api.post("/authentications", {"username": username, "password": "wrong password!"})


@pytest.mark.parametrize("refusal, status, username, password, before", [
    (errors.AccountLocked, 423, "bob", PASSWORD, lock),  # the page said 401 before the table was shared
    (errors.BadRequest, 400, "x" * 300, PASSWORD, None),
    (errors.InvalidCredentials, 401, "bob", "wrong password!", None),
])
def test_the_sign_in_page_and_the_api_refuse_alike(client, api, bob, refusal, status, username, password, before):
    if before is not None:
        before(api, "bob")
    by_api = api.post("/authentications", {"username": username, "password": password})
    by_page = post_form(client, "/sign-in", {"username": username, "password": password})
    assert by_api.json["error"] == refusal.code
    assert by_page.status_code == by_api.status_code == STATUS[refusal] == status
    assert by_api.json["message"] in html.unescape(by_page.get_data(as_text=True))

