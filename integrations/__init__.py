"""Integrations: webhooks in and out, Git receivers, slash commands, interactive messages, scheduled posts (issue #11)."""
