"""Reports for store owners, computed from the replicated journal.

Every figure is folded from the journal records the ingest stored exactly once (``journal``:
``sale.completed`` with the checkout's full sale, ``sale.returned``, ``sale.voided``, shift events,
``report.z``, ``drawer.opened``), in integer minor units, so a report reconciles to the cent with
the registers' own Z reports. ``period`` turns a date range in each store's time zone into UTC
bounds, ``facts`` reads and decodes the records, ``figures`` folds them into tables, ``tables``
is the one shape every report has (JSON, CSV and HTML come from it), ``charts`` draws pictures.
"""
