"""Reads of approvals, one module per thing read; each takes the user where access narrows it."""
