"""Every write Gatekeeper makes goes through a function in this package.

Each is one transaction: it locks or compare-and-sets its row on the open status, writes the
audit event of its change in the same transaction, and queues side effects on commit.
"""
