"""RFID: LLRP and serial UHF reader clients, read pipeline, stock counts, simulators."""
