-- flagctl schema, version 34: the last audited value of each flag and scope, by index.
--
-- `status` and the kill's drift report read the last audit row that changed each flag at
-- each scope. With a DISTINCT ON over the system's whole history that read grew with it
-- (0.34 s at 100,000 rows, seconds at a million). This index holds exactly the rows that
-- read looks at, ordered as it wants them: the read skips from one (flag, scope) to the next
-- and takes the newest row of each, so it costs what the flags and scopes are, not the history.
CREATE INDEX audit_last_value ON flagctl.audit (system, flag, (coalesce(scope, 'global')), seq DESC)
 WHERE flag IS NOT NULL AND action NOT LIKE '%.refused'
   AND target NOT IN ('flagctl.exemption', 'flagctl.engaged_switch') AND target NOT LIKE '%:%';

-- A change's own rows, by transaction: the guard's value_before reads the first image a
-- transaction wrote of a flag (a kill's true base), and the kill's drift report leaves a
-- transaction's rows out. Through (system, flag, seq) alone, finding them means walking the
-- flag's history up to the transaction's rows.
CREATE INDEX audit_txid ON flagctl.audit (txid, system, flag, seq);
