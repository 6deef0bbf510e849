"""A small OpenID Connect provider for the single sign-on tests: django-oauth-toolkit's OIDC
support in a Django project of its own, run as a subprocess with its own SQLite database
(`tests/accounts/oidc_provider/server.py` starts and stops it).

Everything a test may change lives in `control.json` in the provider's folder, read on every
request: its people (password, e-mail, name, groups), and the faults it can be asked to make
(an ID token for another audience, or one signed with a key its JWKS does not publish).
"""
