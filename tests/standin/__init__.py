"""Tests of the stand-in Anthropic upstream, and helpers to run the real CLI against it."""
