"""Identity, tokens, roles and training records of the people and systems that use facematch.

Arrives with the governance issue; until then the only search route is the development one,
which is off unless FACEMATCH_DEV_SEARCH_ROUTE is set.
"""
