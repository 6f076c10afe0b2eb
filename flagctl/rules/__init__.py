"""Pure rules: bucketing, evaluation precedence, how kills combine, stage moves, the
rollback state machine. Functions of values; no database, no terminal."""
