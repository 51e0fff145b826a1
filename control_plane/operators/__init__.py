"""Operators of the control plane: who may do what, proven how, and the record of it.

Roles and token scopes are one table (`policy`), enforced by one dependency (`policy.require`)
that resolves the principal from a session cookie (with its CSRF token on unsafe methods) or a
bearer API token (`gatekeeper`). Logins (`login`) check argon2 hashes, lock an address out after
repeated failures and ask admins for TOTP; every action and every refusal lands in the
append-only audit log (`audit`). The router serves the login pages and the token and audit API.
"""
