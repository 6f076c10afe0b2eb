"""The store: connections, transactions, locks, and every SQL statement flagctl sends,
as named constants, one module per concern."""
