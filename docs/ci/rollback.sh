#!/usr/bin/env bash
# Roll a feature's ladder back one stage after a failed deploy — the job docs/ci.md runs.
#
#   docs/ci/rollback.sh LADDER "REASON"
#
# Needs FLAGCTL_DSN (or --target via FLAGCTL_TARGET) and FLAGCTL_MANIFEST. Decides by
# flagctl's exit codes:
#   0  rolled back (or already rolled back by an earlier try of this same pipeline); under
#      an engaged kill switch the stage beneath the kill moved: the release lands there
#   1  policy refused it (it would widen a flag a kill holds, …): a person must look — no retry
#   4  a lock was not free or a concurrent change won: retried, 3 tries in all
#   5  permission denied: retrying cannot help — no retry
#   3  the database cannot be reached: retried like 4
# After the last try the script exits with that try's code (3 or 4), so alerting can tell
# a database outage from lock contention.
# The request id makes the retries idempotent: a try whose answer was lost and that did
# apply is reported as "already applied" by the next one, never applied twice.
set -uo pipefail

ladder=${1:?usage: rollback.sh LADDER REASON}
reason=${2:?usage: rollback.sh LADDER REASON}
pipeline=${CI_PIPELINE_ID:-${GITHUB_RUN_ID:-manual-$(date +%s)}}
request="ci-$pipeline-rollback-$ladder"
delay=${FLAGCTL_RETRY_DELAY:-2}
flagctl=${FLAGCTL:-flagctl}

for attempt in 1 2 3; do
    result=$("$flagctl" --request-id "$request" stage rollback "$ladder" -r "$reason" -y -o json)
    code=$?
    case $code in
        0)
            echo "$result"
            echo "rolled back $ladder (request $request)" >&2
            exit 0 ;;
        3|4)
            what=$([ "$code" = 3 ] && echo "database unreachable" || echo "busy")
            if [ "$attempt" -lt 3 ]; then
                echo "attempt $attempt: exit $code ($what); retrying in $((delay * attempt))s" >&2
                sleep $((delay * attempt))
            else
                echo "attempt $attempt: exit $code ($what)" >&2
            fi ;;
        1)
            echo "$result"
            echo "refused by policy (exit 1): not retrying; a person must look" >&2
            exit 1 ;;
        5)
            echo "permission denied (exit 5): not retrying; grant the release role" >&2
            exit 5 ;;
        *)
            echo "flagctl failed (exit $code): not retrying" >&2
            exit "$code" ;;
    esac
done
echo "gave up after 3 attempts (last exit $code)" >&2
exit "$code"
