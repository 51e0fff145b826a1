"""Test harness: real Mosquitto processes, real PostgreSQL databases, the real product code."""
