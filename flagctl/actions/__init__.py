"""Typed actions: every change flagctl makes is one action — plan (read, apply the rules),
preview, then apply in one audited transaction (``actions.base.execute``)."""
