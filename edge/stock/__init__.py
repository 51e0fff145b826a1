"""Stock on the appliance: what the ledger says should be on the shelf, per GTIN.

* ``movements`` — the journal kinds that move stock and the bodies of the ones this package owns
  (``stock.received``, ``stock.adjusted``).
* ``on_hand`` — :class:`OnHandProjection`, the expected on-hand a stock count compares with.
"""
