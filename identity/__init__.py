"""Who is calling: access tokens, API keys, the signing secret, and the caller they resolve to."""
