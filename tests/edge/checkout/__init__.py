"""Tests for edge/checkout, one module per domain module."""
