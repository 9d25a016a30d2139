"""Integration-test harness for gripd (and the reference, pushpin)."""
