"""Alert notifications: per-tenant channels (signed webhooks, e-mail) fed by a durable outbox.

``channels`` keeps each tenant's channels and which alerts go to each; ``outbox`` is written in
the alert evaluator's own transaction (an alert opened or cleared and its notifications commit
together) and claimed with a lease by ``worker``, the supervised task that delivers through
``transports`` (HMAC-signed webhook POSTs, SMTP) and retries with the one
:class:`mqttlink.backoff.Backoff`. docs/reports-and-alerts.md says it for operators.
"""
