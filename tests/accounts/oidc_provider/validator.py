"""The claims of control.json in the ID token, and the faults a test asks for."""

from __future__ import annotations

import json
from typing import Any

from jwcrypto import jwk, jwt
from oauth2_provider.oauth2_validators import OAuth2Validator

from tests.accounts.oidc_provider import control


class Validator(OAuth2Validator):
    # Every claim goes into the ID token whatever the scopes (the groups claim has none).
    oidc_claim_scope = None

    def get_additional_claims(self, request: Any) -> dict[str, Any]:
        found = control.person(request.user.username) or {}
        claims = {
            "sub": found.get("sub", f"sub-{request.user.username}"),
            "preferred_username": request.user.username,
            "email": found.get("email", ""),
            "email_verified": True,
            "given_name": found.get("given_name", ""),
            "family_name": found.get("family_name", ""),
        }
        claims[control.read().get("groups_claim", "groups")] = found.get("groups", [])
        return claims

    def get_userinfo_claims(self, request: Any) -> dict[str, Any]:
        claims = super().get_userinfo_claims(request)
        if control.read().get("faults", {}).get("userinfo_sub"):
            claims["sub"] = control.read()["faults"]["userinfo_sub"]
        return claims

    def finalize_id_token(self, id_token: dict, token: Any, token_handler: Any, request: Any):
        faults = control.read().get("faults", {})
        if faults.get("audience"):
            id_token["aud"] = faults["audience"]
        serialized = super().finalize_id_token(id_token, token, token_handler, request)
        if faults.get("foreign_key"):
            # Signed with a key the JWKS does not publish, under the published key's id.
            signed = jwt.JWT(jwt=serialized, key=request.client.jwk_key)
            other = jwk.JWK.generate(kty="RSA", size=2048)
            forged = jwt.JWT(header=signed.header, claims=json.loads(signed.claims))
            forged.make_signed_token(other)
            serialized = forged.serialize()
        return serialized
