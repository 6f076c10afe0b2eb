"""The gate's check statement now lives in ``flagctl.store.gate``, with every other SQL
statement of flagctl in ``flagctl/store/``; its names stay importable from here."""

from flagctl.store.gate import Check as Check
from flagctl.store.gate import check_for as check_for
