#!/usr/bin/env bash
# Runs the whole test suite (what CI runs). Installs ffmpeg first when it is missing.
# Ends with a plain "N passed, N failed, N skipped" line.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-ffmpeg.sh || exit 2
# xunit runs test classes in parallel inside one process, each with libtorch's thread pool:
# sleeping (not spinning) idle OpenMP workers keeps 2 cores from being eaten by busy-waits.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
# Fewer garbage collections in the busy parallel test host: TorchSharp Scalars converted implicitly can be finalised by
# the GC while libtorch still reads them (seen as rare "toFloat"/"Scalar.h" errors in unrelated tests). A 256 MB gen0
# budget makes those collections rare; the real fix is keeping such Scalars alive (done in our optimizer).
export DOTNET_GCgen0size=${DOTNET_GCgen0size:-0x10000000}
log=$(mktemp)
dotnet test tests/Dloral.Tests/Dloral.Tests.csproj -c Release "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
summary=$(grep -E '(Passed|Failed)!  - Failed:' "$log" | tail -n 1)
rm -f "$log"
if [ -n "$summary" ]; then
  failed=$(sed -E 's/.*Failed: *([0-9]+).*/\1/' <<<"$summary")
  passed=$(sed -E 's/.*Passed: *([0-9]+).*/\1/' <<<"$summary")
  skipped=$(sed -E 's/.*Skipped: *([0-9]+).*/\1/' <<<"$summary")
  echo "$passed passed, $failed failed, $skipped skipped"
  if [ "$passed" = "0" ]; then echo "error: no test ran" >&2; exit 1; fi
else
  echo "0 passed, 1 failed"
  [ "$status" = "0" ] && status=1
fi
exit "$status"
