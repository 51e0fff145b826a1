"""Provisioning in the control plane: enrolments, the CA's SQL ledger, device certificates.

The CA, the QR payload and the refusal rules live in the `provisioning` library; this package
stores them (enrolments and issued certificates in the fleet's SQL store) and serves them over
the API (`router`), so the same code runs on one machine or on several instances.
"""
