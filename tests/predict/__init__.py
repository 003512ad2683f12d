"""Tests of prediction, export and the latency benchmark."""
