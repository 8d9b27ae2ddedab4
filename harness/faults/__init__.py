"""Fault operations on any platform's nemesis: targeting, and an undo that always runs."""
