"""Widgets of the terminal UI: they render state and turn keys into calls on the session."""
