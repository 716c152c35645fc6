"""Helpers shared by the test suite: real server processes on free loopback ports."""
