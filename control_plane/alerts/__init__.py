"""Fleet alerts: what is wrong with a device, opened and cleared by a supervised evaluator.

``rules`` decides, from what the control plane already stores (presence, telemetry, the chain
flag, the reported peripherals, certificates, agent events, the journal's timestamps), which
conditions hold now; ``evaluator`` turns that into alerts idempotently — one open alert per
device and kind, cleared by itself when the condition ends — and samples each device's backlog
and lag into a bounded history; ``service`` lists and acknowledges them (audited).
"""
