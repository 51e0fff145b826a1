"""The appliance's first boot: from a scanned enrolment QR (or a typed code) to an mTLS identity."""
