"""Microsoft Entra external MFA: this server as the OpenID Connect provider Entra sends a person to
for their second factor (docs/entra.md).

profile.py: the fixed parts of Microsoft's profile (redirect URIs, acr and amr, the request's `claims`);
hints.py: checking the id_token_hint Entra signs; entra_keys.py: Entra's published keys, cached;
signing_keys.py: our own keys and id_tokens; links.py: which person an Entra user is;
requests.py: an authorization request from its arrival to its one answer.
"""
