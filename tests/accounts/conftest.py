from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.accounts.oidc_provider.server import Provider, running_provider


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """The test OpenID provider (tests/accounts/oidc_provider/), one per test module that asks
    for it, sending people back to the test client's callback."""
    with running_provider(
        tmp_path_factory.mktemp("oidc-provider"),
        redirect_uris=["http://testserver/accounts/oidc/callback/"],
        logout_uris=["http://testserver/accounts/login/"],
    ) as provider:
        yield provider
